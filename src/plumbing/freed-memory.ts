// Gives the memory of closed connections back to the kernel. glibc's malloc keeps what closed TLS
// connections freed inside its heap and returns only the heap's top on its own: after a connection flood
// `serve` measured 137 MiB held by malloc with 13 MiB in use, so its RSS stayed at the flood's peak (on
// Node 24 past the Deployment's 256Mi limit after repeated floods). The addon native/malloc-trim.c calls
// malloc_trim(0), which Node.js has no call for; this file loads it and calls it once many connections
// have closed.
import type { Server } from 'node:net';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';

/** malloc_trim(0): true when malloc gave memory back. */
export type Trim = () => boolean;

export type TrimLoad = { trim: Trim } | { trim?: undefined; problem: string };

/** The first of `candidates` that exists, loaded; a machine without it (no C compiler, not glibc) says why. */
export function loadMallocTrim(candidates: readonly string[]): TrimLoad {
  const file = candidates.find((path) => existsSync(path));
  if (!file) return { problem: `no malloc-trim addon at ${candidates.join(' or ')}` };
  const addon: { exports: { trim?: unknown } } = { exports: {} };
  try {
    process.dlopen(addon, file);
  } catch (err) {
    return { problem: `${file} does not load: ${(err as Error).message}` };
  }
  const { trim } = addon.exports;
  if (typeof trim !== 'function') return { problem: `${file} has no trim()` };
  return { trim: trim as Trim };
}

export interface FreedMemoryOptions {
  trim: Trim;
  /** How often to look. */
  intervalMs: number;
  /** Closed connections since the last trim that make the next look trim. */
  afterCloses: number;
  logger: Logger;
}

/** Trims every `intervalMs` while connections close in numbers: under a flood, each interval; when quiet, never. */
export function releaseFreedMemory(server: Server, options: FreedMemoryOptions): void {
  let closed = 0;
  server.on('connection', (socket) => socket.once('close', () => closed++));
  const timer = setInterval(() => {
    if (closed < options.afterCloses) return;
    const started = performance.now();
    const released = options.trim();
    options.logger.debug(
      { closed, released, ms: Math.round((performance.now() - started) * 100) / 100 },
      'freed memory given back',
    );
    closed = 0;
  }, options.intervalMs);
  timer.unref();
  server.once('close', () => clearInterval(timer));
}
