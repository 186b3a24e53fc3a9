// What the agent remembers of repairs that did not work, per target, for as long as the target stays
// broken: so that a target the helper refused (not a file of ours: a symlink, a FIFO, a directory,
// another filesystem) or one that keeps failing costs one log line and a retry after a backoff, not a
// remount and a line at every sweep; and so that failures reach /readyz until they are repaired.
//
// A target is known by its namespace and path, and by its situation (its state and the mount on it): a
// target in another situation than the one that failed starts afresh. A new lxcfs retries failures at
// once (the next try may well work), never refusals (the target is still not ours).
import type { TargetStatus } from './classify.js';

export type AttemptKind =
  /** the remount did not work (an errno, a timeout, a verification) */
  | 'failed'
  /** not ours: refused by the helper, or another filesystem is mounted on it */
  | 'refused';

export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

export interface Attempt {
  kind: AttemptKind;
  situation: string;
  error: string;
  /** Tries that ended this way in a row. */
  count: number;
  delayMs: number;
  retryAt: number;
}

/** What a target looks like: a failure in one situation says nothing about another. */
export function situationOf(status: TargetStatus): string {
  if (status.state === 'stale') return `stale:${status.deadMountId ?? '?'}`;
  if (status.state === 'foreign') return `foreign:${status.foreignFsType ?? '?'}`;
  return status.state;
}

export interface AttemptSummary {
  /** Targets whose last remount failed. */
  failed: number;
  /** Namespaces holding such targets. */
  failedNamespaces: number;
  /** One of their errors, for a one-line reason. */
  example?: string;
  /** Targets left alone as not ours. */
  refused: number;
}

export class RepairAttempts {
  private readonly attempts = new Map<string, Attempt>();

  constructor(
    private readonly backoff: Record<AttemptKind, Backoff>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether the target may be tried now, or within `earlyMs`: the sweep that comes for it (the `retry`
   * sweep one backoff after the failure) runs on a timer, which may fire a moment before the clock says.
   */
  due(mntNs: string, status: TargetStatus, newLxcfs: boolean, earlyMs = 0): boolean {
    const attempt = this.current(mntNs, status);
    if (!attempt) return true;
    if (newLxcfs && attempt.kind === 'failed') return true;
    return this.now() + earlyMs >= attempt.retryAt;
  }

  /** The attempt on record for the target in its present situation. */
  current(mntNs: string, status: TargetStatus): Attempt | undefined {
    const attempt = this.attempts.get(key(mntNs, status.target));
    return attempt?.situation === situationOf(status) ? attempt : undefined;
  }

  /** Records a try that did not work; true when it is news (a first, or another kind or error): worth a log line. */
  record(mntNs: string, status: TargetStatus, kind: AttemptKind, error: string): boolean {
    const k = key(mntNs, status.target);
    const before = this.current(mntNs, status);
    const repeat = before?.kind === kind;
    const { firstMs, maxMs } = this.backoff[kind];
    const delayMs = repeat ? Math.min(maxMs, before.delayMs * 2) : firstMs;
    this.attempts.set(k, {
      kind,
      situation: situationOf(status),
      error,
      count: repeat ? before.count + 1 : 1,
      delayMs,
      retryAt: this.now() + delayMs,
    });
    return !repeat || before.error !== error;
  }

  /** The target works now: returns what had failed before, if anything. */
  succeeded(mntNs: string, target: string): Attempt | undefined {
    const k = key(mntNs, target);
    const before = this.attempts.get(k);
    this.attempts.delete(k);
    return before;
  }

  /** Forgets every target but those still broken (`key(mntNs, target)` of each). */
  retain(broken: ReadonlySet<string>): void {
    for (const k of this.attempts.keys()) if (!broken.has(k)) this.attempts.delete(k);
  }

  summary(): AttemptSummary {
    const summary: AttemptSummary = { failed: 0, failedNamespaces: 0, refused: 0 };
    const namespaces = new Set<string>();
    for (const [k, attempt] of this.attempts) {
      if (attempt.kind === 'refused') {
        summary.refused++;
        continue;
      }
      summary.failed++;
      summary.example ??= attempt.error;
      namespaces.add(k.slice(0, k.indexOf('\0')));
    }
    summary.failedNamespaces = namespaces.size;
    return summary;
  }
}

export function key(mntNs: string, target: string): string {
  return `${mntNs}\0${target}`;
}
