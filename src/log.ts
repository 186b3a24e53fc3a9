// Structured JSON logs (pino): one object per line with stable fields `level`, `time`, `msg`, and
// `component`. Callers add a few fields of their own; they never log whole Kubernetes objects.
import { pino, type DestinationStream, type Logger } from 'pino';
import { LOG_ASYNC_BUFFER_BYTES, LOG_BATCH_MS } from './config/defaults.js';

export type { Logger };

let formattedMs = -1;
let formatted = '';

/** pino's ISO-8601 `time`, formatted once per millisecond: a busy webhook writes several lines in one. */
function isoTime(): string {
  const now = Date.now();
  if (now !== formattedMs) {
    formattedMs = now;
    formatted = `,"time":"${new Date(now).toISOString()}"`;
  }
  return formatted;
}

export function createLogger(
  component: string,
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { component },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/**
 * stdout for busy servers: written asynchronously, in batches. The default synchronous write into a
 * full pipe stalls the whole process (pino's writer then sleeps), and a webhook must not wait on
 * whoever reads its logs. Lines are collected for LOG_BATCH_MS and handed to sonic-boom as one string:
 * handed over one by one, each line cost a write to the thread pool and made sonic-boom re-measure all
 * it held, together a sixth of a busy webhook's CPU. Buffered lines are flushed at exit.
 */
export function asyncStdout(): DestinationStream {
  return new BatchedStream(
    pino.destination({ dest: 1, sync: false, maxLength: LOG_ASYNC_BUFFER_BYTES }),
  );
}

class BatchedStream implements DestinationStream {
  private pending: string[] = [];

  constructor(private readonly out: ReturnType<typeof pino.destination>) {
    process.on('exit', () => {
      // process.exit() with lines still waiting. (pino ends its stream at beforeExit: after that a
      // line has nowhere to go.)
      if ((out as { destroyed?: boolean }).destroyed) return;
      this.handOver();
      out.flushSync();
    });
  }

  write(line: string): void {
    // Not unref'd: the batch goes out before the loop can drain and pino ends the stream (beforeExit).
    if (this.pending.push(line) === 1) setTimeout(() => this.handOver(), LOG_BATCH_MS);
  }

  private handOver(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending.join('');
    this.pending = [];
    this.out.write(batch);
  }
}
