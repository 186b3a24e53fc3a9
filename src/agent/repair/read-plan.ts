// Which mountinfo files a sweep reads. Pure: it sees what the survey cached and what the mount watcher
// knows, and touches nothing. A namespace's table is reused only when a change would have been
// reported: its watch is confirmed on the same process, nothing changed since the last read, and the
// cache was read through that process. Everything else (new, changed, unwatched) is read.
import type { WatchStatus } from '../host/mount-watch.js';

/** Why a sweep runs: the agent started, lxcfs came back after a restart, or the sweep interval passed. */
export type SweepTrigger = 'start' | 'lxcfs-restart' | 'periodic';

export interface ReadInput {
  /** The namespace's representative in this sweep. */
  pid: number;
  /** The process the cached table was read through; undefined when nothing is cached. */
  cachedPid: number | undefined;
  /** undefined: not watched (notifications off, watcher down, or the watch failed). */
  watch: WatchStatus | undefined;
  /** This sweep reads every namespace. */
  readAll: boolean;
}

export function mustReadMountinfo({ pid, cachedPid, watch, readAll }: ReadInput): boolean {
  if (readAll || cachedPid !== pid || watch === undefined) return true;
  return watch.pid !== pid || !watch.confirmed || watch.dirty;
}

/**
 * Sweeps at start and after an lxcfs restart read everything, so recovery never depends on the
 * watcher; so does every `everyNth` periodic sweep, a safety net under a notification lost anyway.
 * `periodicSweeps` counts the periodic sweeps before this one.
 */
export function readsEverything(
  trigger: SweepTrigger,
  periodicSweeps: number,
  everyNth: number,
): boolean {
  return trigger !== 'periodic' || periodicSweeps % everyNth === 0;
}
