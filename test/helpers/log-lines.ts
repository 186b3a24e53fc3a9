// The JSON log lines `serve` and `agent` write (pino, one object per line), as tests read them.
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** Appends every JSON line `stream` carries to `into` (other text is skipped), then calls `onLine`. */
export function collectLogLines(
  stream: Readable,
  into: LogLine[],
  onLine?: (line: LogLine) => void,
): void {
  createInterface({ input: stream }).on('line', (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text) as LogLine;
    into.push(line);
    onLine?.(line);
  });
}

/** The message of a line's `err`, which pino writes as { type, message, stack, code }. */
export function errMessage(line: LogLine | undefined): string {
  const err = line?.err as { message?: unknown } | undefined;
  return String(err?.message);
}
