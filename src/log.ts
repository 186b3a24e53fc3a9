// Structured JSON logs (pino): one object per line with stable fields `level`, `time`, `msg`, and
// `component`. Callers add a few fields of their own; they never log whole Kubernetes objects.
import { pino, type DestinationStream, type Logger } from 'pino';
import { LOG_ASYNC_BUFFER_BYTES, LOG_BATCH_BYTES, LOG_FLUSH_INTERVAL_MS } from './config/defaults.js';

export type { Logger };

export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}


/**
 * stdout for busy servers: written asynchronously, in batches. The default synchronous write into a
 * full pipe stalls the whole process (pino's writer then sleeps), and a webhook must not wait on
 * whoever reads its logs. A write per line cost a busy webhook about a tenth of its throughput, so
 * lines wait until a batch is full or the next flush tick, whichever comes first. Buffered lines are
 * flushed at exit.
 */
export function asyncStdout(): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, maxLength: LOG_ASYNC_BUFFER_BYTES });
  setInterval(() => destination.flush(), LOG_FLUSH_INTERVAL_MS).unref();
  return destination;
}
