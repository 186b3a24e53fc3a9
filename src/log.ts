// Structured JSON logs (pino): one object per line with stable fields `level`, `time`, `msg`, and
// `component`. Callers add a few fields of their own; they never log whole Kubernetes objects.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
