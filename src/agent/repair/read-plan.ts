// Which mountinfo files a sweep reads, and which containers are read inside after it. Pure: it sees what
// the survey cached and what the mount watcher knows, and touches nothing. A namespace's table is reused
// only when a change would have been reported: its watch is confirmed on the same process, nothing
// changed since the last read, and the cache was read through that process. Everything else (new,
// changed, unwatched) is read.
import type { WatchStatus } from '../host/mount-watch.js';

/**
 * Why a sweep runs: the agent started; lxcfs came back after a restart; the safety net's interval passed
 * (`full`); the agent polls because notifications are off or incomplete (`poll`); the last sweep left a
 * repair undone (`retry`: a remount failed or a namespace was not entered, which no notification would
 * report); a notification said something changed (`change`: a mount table, a process gone, a new cgroup).
 */
export type SweepTrigger = 'start' | 'lxcfs-restart' | 'full' | 'poll' | 'retry' | 'change';

/** Which trigger a sweep asked for twice (one waiting, one more) runs as: the one that does more. */
const STRENGTH: Record<SweepTrigger, number> = {
  start: 5,
  'lxcfs-restart': 4,
  full: 3,
  poll: 2,
  retry: 1,
  change: 0,
};

export function strongerTrigger(a: SweepTrigger | undefined, b: SweepTrigger): SweepTrigger {
  return a !== undefined && STRENGTH[a] >= STRENGTH[b] ? a : b;
}

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
 * Sweeps at start, after an lxcfs restart and the safety net's read every table, so recovery never
 * depends on a notification. Polls and changes read only what may have changed (every table while
 * nothing is watched).
 */
export function readsEverything(trigger: SweepTrigger): boolean {
  return trigger === 'start' || trigger === 'lxcfs-restart' || trigger === 'full';
}

/** Reads inside containers a sweep asks for (repair/reads.ts). */
export interface ReadsAfterSweep {
  /** A random sample of every container. */
  sample: boolean;
  /** Namespaces to read, each of them. */
  namespaces: readonly string[];
}

/**
 * Reads happen for a reason, never on a timer of their own: after start, an lxcfs restart or the safety
 * net, a sample of every container; after any sweep but those two, the namespaces whose mount tables
 * changed: new containers, and containers the agent has just remounted (their change is read by the
 * sweep after the remount, which so checks the repair from inside). At start and after a restart every
 * namespace counts as changed: the sample stands for them.
 */
export function readsAfterSweep(
  trigger: SweepTrigger,
  changed: readonly string[],
): ReadsAfterSweep {
  const sample = readsEverything(trigger);
  if (trigger === 'start' || trigger === 'lxcfs-restart') return { sample, namespaces: [] };
  return { sample, namespaces: changed };
}
