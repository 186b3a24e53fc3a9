// Structured JSON logs (pino): one object per line with stable fields `level`, `time`, `msg`, and
// `component`. Callers add a few fields of their own; they never log whole Kubernetes objects.
import { pino, type DestinationStream, type Logger } from 'pino';
import { LOG_ASYNC_BUFFER_BYTES } from './config/defaults.js';

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
 * stdout for busy servers: written asynchronously, lines batched while a write is in flight. The
 * default synchronous write into a full pipe stalls the whole process (pino's writer then sleeps),
 * and a webhook must not wait on whoever reads its logs. Buffered lines are flushed at exit.
 */
export function asyncStdout(): DestinationStream {
  return pino.destination({ dest: 1, sync: false, maxLength: LOG_ASYNC_BUFFER_BYTES });
}
