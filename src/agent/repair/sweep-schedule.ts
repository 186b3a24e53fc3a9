// When the agent sweeps, besides start and lxcfs restarts (the supervisor's): on notifications, soon
// after a change (`change`), and on two timers: the safety net every full-sweep interval (`full`), and,
// only while notifications are off or incomplete, a poll every sweep interval (`poll`). A sweep that left
// a repair undone (a failed remount, a namespace not entered, a failed sweep) changes no mount table, so
// nothing would report it: it is retried a sweep interval later (`retry`), as a poll would. With complete
// notifications nothing else runs: a quiet node costs no sweep between safety nets, and a busy one at
// most one change sweep per `changeGapMs`, however many notifications come.
import type { SweepTrigger } from './read-plan.js';

/** What the schedule needs of a sweep's report: what it left undone. */
export interface SweepOutcome {
  failed: number;
  notEntered: number;
}

export interface SweepScheduleConfig {
  /** Polls while notifications are off or incomplete, and retries what a sweep left undone (--sweep-interval). */
  pollMs: number;
  /** The safety net (--full-sweep-interval). */
  fullMs: number;
  /** A change is swept this long after its first notification, so a burst costs one sweep. */
  settleMs: number;
  /** Change sweeps start at least this far apart. */
  changeGapMs: number;
  /** Sweeps this long after a new cgroup: its namespace comes after it. */
  newCgroupMs: readonly number[];
}

export class SweepSchedule {
  private fullTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** When change sweeps are due (sorted), and the timer of the first. */
  private changesDue: number[] = [];
  private changeTimer: NodeJS.Timeout | undefined;
  private lastChangeAt = -Infinity;
  /** Between start() and stop(): notifications before the agent is up, or after it stopped, start nothing. */
  private running = false;

  constructor(
    private readonly config: SweepScheduleConfig,
    private readonly sweep: (trigger: SweepTrigger) => Promise<unknown>,
    /** Whether every change is notified (mount tables and new cgroups). */
    private readonly notified: () => boolean,
  ) {}

  /** Also sweeps once: notifications that came before it (the watches the start sweep began) were ignored. */
  start(): void {
    this.running = true;
    this.fullTimer = setInterval(() => this.run('full'), this.config.fullMs);
    this.coverageChanged();
    this.changed();
  }

  stop(): void {
    this.running = false;
    clearInterval(this.fullTimer);
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.changeTimer);
    this.changesDue = [];
  }

  /**
   * Told after every sweep, whoever asked for it (undefined: the sweep failed). What it left undone is
   * retried a sweep interval later, unless polls already run or a retry is due.
   */
  swept(outcome: SweepOutcome | undefined): void {
    if (!this.running || this.pollTimer !== undefined || this.retryTimer !== undefined) return;
    if (outcome !== undefined && outcome.failed + outcome.notEntered === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.run('retry');
    }, this.config.pollMs);
  }

  /** A notification: something may have changed. */
  changed(): void {
    this.changeAfter(this.config.settleMs);
  }

  cgroupCreated(): void {
    for (const ms of this.config.newCgroupMs) this.changeAfter(ms);
  }

  /**
   * Notifications became complete or incomplete: poll or stop polling. Either way it sweeps once:
   * becoming incomplete, for what a lost notification may have said; becoming complete, for what
   * changed between the last poll and now.
   */
  coverageChanged(): void {
    if (!this.running) return;
    const notified = this.notified();
    if (notified && this.pollTimer !== undefined) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
      this.changed();
    } else if (!notified && this.pollTimer === undefined) {
      this.pollTimer = setInterval(() => this.run('poll'), this.config.pollMs);
      this.run('poll');
    }
  }

  /** A change sweep `ms` from now, unless one is already due within the settle time of it. */
  private changeAfter(ms: number): void {
    if (!this.running) return;
    const due = Date.now() + ms;
    if (this.changesDue.some((other) => Math.abs(other - due) <= this.config.settleMs)) return;
    this.changesDue = [...this.changesDue, due].sort((a, b) => a - b);
    this.armChangeTimer();
  }

  /** Arms the timer for the first change due, no sooner than the gap after the last change sweep. */
  private armChangeTimer(): void {
    clearTimeout(this.changeTimer);
    const first = this.changesDue[0];
    if (first === undefined) return;
    const at = Math.max(first, this.lastChangeAt + this.config.changeGapMs);
    this.changeTimer = setTimeout(
      () => {
        const now = Date.now();
        this.changesDue = this.changesDue.filter((due) => due > now);
        this.lastChangeAt = now;
        this.run('change');
        this.armChangeTimer();
      },
      Math.max(0, at - Date.now()),
    );
  }

  private run(trigger: SweepTrigger): void {
    // Notifications may have been lost since (the watcher died): the sweep decides, then so do we.
    void this.sweep(trigger).then(() => this.coverageChanged());
  }
}
