// Hands memory back to the kernel through the addon native/release-memory.c, whose two calls Node.js
// lacks; both commands work without it.
//   serve: glibc's malloc keeps what closed TLS connections freed inside its heap and returns only the
//          heap's top on its own (after a connection flood `serve` measured 137 MiB held by malloc with
//          13 MiB in use; on Node 24 past the Deployment's 256Mi limit after repeated floods), so it
//          calls malloc_trim(0) once many connections have closed.
//   agent: starting Node.js and a sweep of every container touch code pages of the node binary a quiet
//          agent does not use again, ~30 MiB of its RSS; once such a burst is over and the agent has
//          been quiet a while, it pages them out (they are read back from the file when next used).
import type { Server } from 'node:net';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';

export interface ReleaseMemory {
  /** malloc_trim(0): true when malloc gave memory back. */
  trim(): boolean;
  /** madvise(MADV_PAGEOUT) over the read-only file mappings: bytes advised, or -errno. */
  pageOutCode(): number;
}

export type ReleaseMemoryLoad = { addon: ReleaseMemory } | { addon?: undefined; problem: string };

/** The first of `candidates` that exists, loaded; a machine without it (no C compiler, not glibc) says why. */
export function loadReleaseMemory(candidates: readonly string[]): ReleaseMemoryLoad {
  const file = candidates.find((path) => existsSync(path));
  if (!file) return { problem: `no release-memory addon at ${candidates.join(' or ')}` };
  const loaded: { exports: Partial<Record<keyof ReleaseMemory, unknown>> } = { exports: {} };
  try {
    process.dlopen(loaded, file);
  } catch (err) {
    return { problem: `${file} does not load: ${(err as Error).message}` };
  }
  const { trim, pageOutCode } = loaded.exports;
  if (typeof trim !== 'function' || typeof pageOutCode !== 'function')
    return { problem: `${file} lacks trim() or pageOutCode(): an addon of another version` };
  return { addon: loaded.exports as ReleaseMemory };
}

export interface FreedMemoryOptions {
  trim: ReleaseMemory['trim'];
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

export interface CodePagesOptions {
  pageOutCode: ReleaseMemory['pageOutCode'];
  /** How long after the last burst of work to wait: a burst is often followed by a few more. */
  quietMs: number;
  logger: Logger;
}

const rssMiB = () => Math.round((process.memoryUsage.rss() / 2 ** 20) * 10) / 10;

/**
 * Pages the code out `quietMs` after the last call of `burstOver()`; the caller says when a burst of
 * work (start-up, a recovery) ended. A kernel before 5.4 (no MADV_PAGEOUT) is told once, at warn.
 */
export function releaseCodeAfterBursts(options: CodePagesOptions): {
  burstOver(): void;
  stop(): void;
} {
  let timer: NodeJS.Timeout | undefined;
  let unsupported = false;
  const release = () => {
    const before = rssMiB();
    const started = performance.now();
    const advised = options.pageOutCode();
    if (advised < 0) {
      unsupported = true;
      options.logger.warn(
        { errno: -advised },
        'cannot page out code pages (madvise MADV_PAGEOUT needs Linux >= 5.4): the RSS keeps what start-up touched',
      );
      return;
    }
    options.logger.info(
      {
        advisedMiB: Math.round(advised / 2 ** 20),
        rssBeforeMiB: before,
        rssAfterMiB: rssMiB(),
        ms: Math.round((performance.now() - started) * 100) / 100,
      },
      'code pages given back',
    );
  };
  return {
    burstOver() {
      if (unsupported) return;
      clearTimeout(timer);
      timer = setTimeout(release, options.quietMs).unref();
    },
    stop: () => clearTimeout(timer),
  };
}
