// The stateful side of repair. One sweep: survey every container namespace, remember what was injected,
// The stateful side of repair. One sweep: survey every container namespace, remember what was injected,
// remount what is broken (stale or missing), report processes a remount cannot help, and ask for reads
// inside the containers that have a reason for one (read-plan.ts). Sweeps run at start, after every
// lxcfs restart, when a notification says something changed, and on the agent's timers (sweep-schedule.ts);
// they never overlap. The sweeper learns about lxcfs from the supervisor through `LxcfsListener`, so
// neither needs the other.
//
// What one workload can cost is bounded: namespaces of other user namespaces are skipped unread
// (survey), a container's extra namespaces beyond a limit are neither repaired nor remembered
// (bounds.ts), the state holds a bounded number of namespaces (remember.ts), and a target that was
// refused or failed waits out a backoff with one log line (attempts.ts). A target waiting out its
// backoff is not counted as failed, so it asks for no retry sweep (sweep-schedule.ts): a hostile target
// costs one line and one try per backoff, not a sweep per sweep interval. Ordinary containers are
// repaired first and never share a helper run with a namespace that failed before. A failed state save
// is reported and never stops a repair.
import type { Logger } from '../../log.js';
import { CoalescingRunner } from '../../plumbing/coalescing-runner.js';
import type { LxcfsListener } from '../lxcfs/supervisor.js';
import type { MountWatch } from '../host/mount-watch.js';
import { key, RepairAttempts, type AttemptSummary, type Backoff } from './attempts.js';
import { limitPerContainer } from './bounds.js';
import type { TargetStatus } from './classify.js';
import { DeadDescriptorReporter } from './dead-descriptors.js';
import {
  readsAfterSweep,
  readsEverything,
  strongerTrigger,
  type SweepTrigger,
} from './read-plan.js';
import { remember } from './remember.js';
import { remount, type RemountOptions, type RemountOutcome, type RemountPlan } from './remount.js';
import type { NotEntered } from '../host/chosen-process.js';
import type { AgentState, SaveOutcome, StateFile } from './state.js';
import {
  containerFields,
  newSurveyMemory,
  survey,
  type NamespaceView,
  type SurveyConfig,
} from './survey.js';

/** A target due this soon is tried by this sweep: a sweep's timer may fire a little before the clock says. */
const DUE_EARLY_MS = 250;

export interface SweepConfig extends SurveyConfig {
  fuseMount: string;
  helper: string;
  remountParallelism: number;
  remountBatchSize: number;
  helperTimeoutMs: number;
  /** The kernel has open_tree/move_mount: without them broken mounts are only reported. */
  remountSupported: boolean;
  /** A sweep trusts the mount watcher only once it has answered a ping within this. */
  watchPingTimeoutMs: number;
  maxNamespacesPerContainer: number;
  maxRememberedNamespaces: number;
  retryBackoff: Backoff;
  refusedBackoff: Backoff;
}

export interface SweepReport {
  /** What asked for it: of several waiting, the one that does most (strongerTrigger). */
  trigger: SweepTrigger;
  /** False when lxcfs was not running: nothing was looked at. */
  done: boolean;
  namespaces: number;
  /** Namespaces whose targets are all live after the sweep. */
  covered: number;
  stale: number;
  missing: number;
  remounted: number;
  failed: number;
  /** Targets not remounted because their namespace was not entered (see RemountOutcome.notEntered). */
  notEntered: number;
  /** Targets left alone as not ours: refused by the helper, or another filesystem on them. */
  refused: number;
  /** Targets whose earlier remount failed, waiting out their backoff. */
  deferred: number;
  /** Mount namespaces skipped: of other user namespaces, or beyond their container's limit. */
  otherUserNamespaces: number;
  overContainerLimit: number;
  deadDescriptorProcesses: number;
  /** mountinfo files read; the other namespaces' tables had not changed. */
  mountinfoRead: number;
  /** Namespaces with a confirmed mount watch after the sweep (0 with notifications off). */
  watched: number;
  durationMs: number;
  /** CPU time of the agent process during the sweep, remounts' waits included (0.1 ms steps). */
  cpuMs: number;
  /** The state could not be saved (repairs went on): retried by a later sweep. */
  stateUnsaved: boolean;
}

/** What a sweep reports for metrics (the agent's metrics implement it). */
export interface SweepMetrics {
  recordSweep(report: SweepReport, cpuSeconds: number, attempts: AttemptSummary): void;
  recordStateSave(outcome: SaveOutcome, namespaces: number): void;
  /** A namespace the helper (or the agent) would not enter, and why. */
  recordNotEntered(reason: NotEntered): void;
}

/** What the sweeper tells /readyz. */
export interface SweeperHealth {
  /** Why the last state save failed; undefined once one worked. */
  stateSaveError?: string;
  attempts: AttemptSummary;
}

/** Reads inside containers (repair/reads.ts), asked for after sweeps. */
export interface SweepReads {
  /** Reads inside a random sample of `views`. */
  sample(views: readonly NamespaceView[]): void;
  /** Reads inside each of `views`. */
  read(views: readonly NamespaceView[]): void;
}

/**
 * What a sweeper works with: where its state lives, where it reports, the mount watcher if any, and the
 * reads inside containers it asks for after its sweeps, if any.
 */
export interface SweeperParts {
  stateFile: StateFile;
  metrics: SweepMetrics;
  log: Logger;
  watch?: MountWatch;
  reads?: SweepReads;
  /** Told after every sweep, whatever asked for it (undefined: the sweep failed), so what it left undone is retried. */
  afterSweep?: (report: SweepReport | undefined) => void;
}

export class Sweeper implements LxcfsListener {
  private readonly runner = new CoalescingRunner<SweepReport>();
  private readonly memory = newSurveyMemory();
  private readonly deadDescriptors: DeadDescriptorReporter;
  private readonly attempts: RepairAttempts;
  /** dev of the running lxcfs' connection; undefined while it is down. */
  private liveDev: string | undefined;
  private swept = false;
  /** The trigger the next run runs as: requests made while one runs merge into it (strongerTrigger). */
  private nextTrigger: SweepTrigger | undefined;
  /** The state object last written: a state is saved only when it is another object (StateFile skips unchanged text). */
  private saved: AgentState | undefined;
  private stateSaveError: string | undefined;
  /** Containers over the namespace limit, each logged once while it is. */
  private overLimit = new Set<string>();

  private readonly stateFile: StateFile;
  private state: AgentState;
  private readonly metrics: SweepMetrics;
  private readonly log: Logger;
  /** Mount notifications; without them every sweep reads every mount table. */
  private readonly watch: MountWatch | undefined;
  private readonly reads: SweepReads | undefined;
  private readonly afterSweep: ((report: SweepReport | undefined) => void) | undefined;

  constructor(
    private readonly config: SweepConfig,
    parts: SweeperParts,
  ) {
    ({
      stateFile: this.stateFile,
      metrics: this.metrics,
      log: this.log,
      watch: this.watch,
      reads: this.reads,
      afterSweep: this.afterSweep,
    } = parts);
    this.state = this.stateFile.load();
    this.deadDescriptors = new DeadDescriptorReporter(config.proc, this.log);
    this.attempts = new RepairAttempts({
      failed: config.retryBackoff,
      refused: config.refusedBackoff,
    });
  }

  /** A sweep has looked at every container since lxcfs first came up. */
  get hasSwept(): boolean {
    return this.swept;
  }

  health(): SweeperHealth {
    return { stateSaveError: this.stateSaveError, attempts: this.attempts.summary() };
  }

  /** The process chosen for `mntNs` was refused (another process has its pid): the next sweep chooses anew. */
  forgetChosenProcess(mntNs: string): void {
    this.memory.representatives.delete(mntNs);
  }

  /** A new lxcfs connection: its mounts are ours, now and after it dies. */
  lxcfsMounted(dev: string): void {
    if (this.state.knownDevs.includes(dev)) return;
    this.state = { ...this.state, knownDevs: [...this.state.knownDevs, dev] };
    this.save();
  }

  async lxcfsUp(dev: string, restarted: boolean): Promise<void> {
    this.liveDev = dev;
    await this.sweep(restarted ? 'lxcfs-restart' : 'start');
  }

  lxcfsDown(): void {
    this.liveDev = undefined;
  }

  /** Runs a sweep (one more after the running one, if any); never rejects: a failure is logged. */
  sweep(trigger: SweepTrigger): Promise<SweepReport | undefined> {
    this.nextTrigger = strongerTrigger(this.nextTrigger, trigger);
    return this.runner
      .run(() => {
        const merged = this.nextTrigger ?? trigger;
        this.nextTrigger = undefined;
        return this.runOnce(merged);
      })
      .then(
        (report) => {
          this.swept ||= report.done;
          return report;
        },
        (err: unknown) => {
          this.log.error({ err, trigger }, 'sweep failed');
          return undefined;
        },
      )
      .then((report) => {
        this.afterSweep?.(report);
        return report;
      });
  }

  private async runOnce(trigger: SweepTrigger): Promise<SweepReport> {
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    const report: SweepReport = {
      trigger,
      done: false,
      namespaces: 0,
      covered: 0,
      stale: 0,
      missing: 0,
      remounted: 0,
      failed: 0,
      notEntered: 0,
      refused: 0,
      deferred: 0,
      otherUserNamespaces: 0,
      overContainerLimit: 0,
      deadDescriptorProcesses: 0,
      mountinfoRead: 0,
      watched: 0,
      durationMs: 0,
      cpuMs: 0,
      stateUnsaved: false,
    };
    const liveDev = this.liveDev;
    if (liveDev === undefined) return report;

    const readAll = readsEverything(trigger);
    // The watcher's word counts only once it has answered: one that stopped is killed, and meanwhile
    // (it is restarted after a backoff) nothing is watched, so every table is read.
    if (this.watch && !readAll) await this.watch.checkAnswering(this.config.watchPingTimeoutMs);
    const surveyed = survey(this.config, { liveDev, state: this.state }, this.memory, {
      readAll,
      watch: this.watch,
    });
    // Our own remounts below change tables too: the watcher reports them, and the next sweep reads them.
    this.watch?.follow(surveyed.namespaces);
    report.mountinfoRead = surveyed.mountinfoRead;
    report.watched = this.watch?.watched ?? 0;
    report.otherUserNamespaces = surveyed.otherUserNamespaces;
    const {
      kept: views,
      rank,
      over,
    } = limitPerContainer(surveyed.views, this.config.maxNamespacesPerContainer);
    report.overContainerLimit = surveyed.views.length - views.length;
    this.logOverLimit(views, over);
    // Saved before any remount, so an agent killed halfway still knows what was injected; a failed save
    // is reported, and the repairs go on from the state in memory.
    this.state = remember(this.state, views, liveDev, this.config.maxRememberedNamespaces);
    const { namespaces: remembered } = this.state;
    this.deadDescriptors.keepOnly((mntNs) => Object.hasOwn(remembered, mntNs));
    this.save();
    report.stateUnsaved = this.stateSaveError !== undefined;
    report.done = true;
    report.namespaces = views.length;

    const { ordinary, suspects, unresolved } = this.plan(
      views,
      rank,
      trigger === 'start' || trigger === 'lxcfs-restart',
      report,
    );
    this.askForReads(trigger, views, surveyed.changed);
    for (const mntNs of await this.repair({ ordinary, suspects }, views, liveDev, report))
      unresolved.add(mntNs);
    report.covered = views.filter((v) => !unresolved.has(v.ns.mntNs)).length;
    report.deadDescriptorProcesses = this.deadDescriptors.report(views, unresolved);

    report.durationMs = Math.round(performance.now() - started);
    const cpu = process.cpuUsage(cpuStarted);
    report.cpuMs = Math.round((cpu.user + cpu.system) / 100) / 10;
    this.metrics.recordSweep(report, (cpu.user + cpu.system) / 1e6, this.attempts.summary());
    const busy = report.stale + report.missing + report.failed + report.notEntered > 0;
    this.log[busy ? 'info' : 'debug'](report, 'sweep done');
    return report;
  }

  /**
   * What to remount: every broken target that is ours and due. Foreign targets and those waiting out a
   * backoff are left alone (a foreign one is logged once). Namespaces with an earlier failure, and a
   * container's extra namespaces, are suspects: remounted after the others, one per helper run.
   */
  private plan(
    views: readonly NamespaceView[],
    rank: ReadonlyMap<string, number>,
    newLxcfs: boolean,
    report: SweepReport,
  ) {
    const ordinary: RemountPlan[] = [];
    const suspects: RemountPlan[] = [];
    const unresolved = new Set<string>();
    const broken = new Set<string>();
    for (const view of views) {
      const mntNs = view.ns.mntNs;
      const todo: TargetStatus[] = [];
      let suspect = (rank.get(mntNs) ?? 0) > 0;
      let leftAlone = 0;
      for (const s of view.statuses) {
        if (s.state === 'live') continue;
        broken.add(key(mntNs, s.target));
        if (s.state === 'foreign') {
          leftAlone++;
          report.refused++;
          const reason = `another filesystem (${s.foreignFsType}) is mounted on it`;
          if (this.attempts.record(mntNs, s, 'refused', reason)) {
            this.log.warn(
              { ...containerFields(view), target: s.target, fsType: s.foreignFsType },
              'an lxcfs file of ours was covered by another filesystem: left alone',
            );
          }
          continue;
        }
        const before = this.attempts.current(mntNs, s);
        if (!this.attempts.due(mntNs, s, newLxcfs, DUE_EARLY_MS)) {
          leftAlone++;
          if (before?.kind === 'refused') report.refused++;
          else report.deferred++;
          continue;
        }
        suspect ||= before !== undefined;
        todo.push(s);
      }
      // A namespace with targets left alone stays unresolved whatever the remounts do.
      if (leftAlone > 0) unresolved.add(mntNs);
      if (todo.length === 0) continue;
      const stale = todo.filter((s) => s.state === 'stale').map((s) => s.target);
      const missing = todo.filter((s) => s.state === 'missing').map((s) => s.target);
      report.stale += stale.length;
      report.missing += missing.length;
      this.log.warn({ ...containerFields(view), stale, missing }, 'broken lxcfs mounts');
      for (const s of todo)
        if (s.deadMountId !== undefined) this.deadDescriptors.remember(mntNs, s.deadMountId);
      const plan = { mntNs, pid: view.ns.pid, startTime: view.ns.startTime, targets: todo };
      (suspect ? suspects : ordinary).push(plan);
    }
    this.attempts.retain(broken);
    ordinary.sort((a, b) => (rank.get(a.mntNs) ?? 0) - (rank.get(b.mntNs) ?? 0));
    return { ordinary, suspects, unresolved };
  }

  private logOverLimit(views: readonly NamespaceView[], over: ReadonlyMap<string, number>): void {
    for (const [cgroup, count] of over) {
      if (this.overLimit.has(cgroup)) continue;
      const view = views.find((v) => v.identity.cgroup === cgroup);
      this.log.warn(
        {
          ...(view ? containerFields(view) : { cgroup }),
          namespaces: count,
          limit: this.config.maxNamespacesPerContainer,
        },
        'a container has more mount namespaces with lxcfs files than the limit: only its oldest are repaired and remembered',
      );
    }
    this.overLimit = new Set(over.keys());
  }

  /** Hands the reads this sweep has a reason for to `reads` (stale targets are not read: peek.ts). */
  private askForReads(
    trigger: SweepTrigger,
    views: readonly NamespaceView[],
    changed: readonly string[],
  ): void {
    const wanted = readsAfterSweep(trigger, changed);
    if (!this.reads) return;
    if (wanted.sample) this.reads.sample(views);
    if (wanted.namespaces.length === 0) return;
    const named = new Set(wanted.namespaces);
    this.reads.read(views.filter((v) => named.has(v.ns.mntNs)));
  }

  /** Writes the state when it is another object than the one last written; a failed write is retried at the next call. */
  private save(): void {
    if (this.state === this.saved) return;
    const outcome = this.stateFile.save(this.state);
    this.metrics.recordStateSave(outcome, Object.keys(this.state.namespaces).length);
    if (outcome.ok) {
      if (this.stateSaveError !== undefined)
        this.log.info(
          { path: this.stateFile.path, bytes: outcome.bytes },
          'agent state saved again',
        );
      this.stateSaveError = undefined;
      this.saved = this.state;
      return;
    }
    const why = `cannot save the agent's state to ${this.stateFile.path} (${outcome.code}: ${outcome.error})`;
    if (why !== this.stateSaveError) {
      this.log.error(
        { path: this.stateFile.path, errno: outcome.code, bytes: outcome.bytes },
        `${why}: repairs go on, but what the agent learns is lost if it restarts; free space there`,
      );
    }
    this.stateSaveError = why;
  }

  /** Remounts and logs the outcome; returns the namespaces left with a broken target. */
  private async repair(
    { ordinary, suspects }: { ordinary: RemountPlan[]; suspects: RemountPlan[] },
    views: readonly NamespaceView[],
    liveDev: string,
    report: SweepReport,
  ): Promise<Set<string>> {
    const plans = [...ordinary, ...suspects];
    if (plans.length === 0) return new Set();
    if (!this.config.remountSupported) {
      this.log.error(
        { namespaces: plans.length },
        'broken lxcfs mounts cannot be repaired on this kernel (no open_tree/move_mount): recreate these pods',
      );
      return new Set(plans.map((p) => p.mntNs));
    }
    const options: RemountOptions = {
      helper: this.config.helper,
      proc: this.config.proc,
      fuseMount: this.config.fuseMount,
      liveDev,
      parallelism: this.config.remountParallelism,
      batchSize: this.config.remountBatchSize,
      timeoutMs: this.config.helperTimeoutMs,
    };
    // Suspects after every ordinary container, each in a helper run of its own: a target that hangs
    // the helper until its timeout holds up nothing else.
    const outcomes = [
      ...(await remount(ordinary, options)),
      ...(await remount(suspects, { ...options, batchSize: 1 })),
    ];
    const viewsByNs = new Map(views.map((v) => [v.ns.mntNs, v]));
    const plansByNs = new Map(plans.map((p) => [p.mntNs, p]));
    const outcomesByNs = new Map<string, RemountOutcome[]>();
    for (const o of outcomes) {
      const mine = outcomesByNs.get(o.mntNs);
      if (mine) mine.push(o);
      else outcomesByNs.set(o.mntNs, [o]);
    }
    const failedNs = new Set<string>();
    for (const [mntNs, mine] of outcomesByNs) {
      const view = viewsByNs.get(mntNs)!;
      const refused = mine.find((o) => o.notEntered !== undefined);
      if (refused) {
        // The whole namespace, never a target of it: one line, and the process is chosen anew next time.
        failedNs.add(mntNs);
        this.forgetChosenProcess(mntNs);
        this.metrics.recordNotEntered(refused.notEntered!);
        report.notEntered += mine.length;
        this.log.error(
          {
            ...containerFields(view),
            targets: mine.map((o) => o.target),
            notEntered: refused.notEntered,
            err: refused.error,
          },
          'namespace not entered: remount refused',
        );
        continue;
      }
      const done = mine.filter((o) => o.ok);
      if (done.length > 0) {
        const how = [...new Set(done.map((o) => o.how))].join(',');
        const failedBefore = done.filter(
          (o) => this.attempts.succeeded(mntNs, o.target) !== undefined,
        ).length;
        this.log.info(
          {
            ...containerFields(view),
            targets: done.map((o) => o.target),
            how,
            ...(failedBefore > 0 ? { failedBefore } : {}),
          },
          'remounted',
        );
      }
      for (const o of mine.filter((o) => !o.ok)) {
        failedNs.add(mntNs);
        const status = plansByNs.get(mntNs)!.targets.find((t) => t.target === o.target)!;
        const kind = o.refused === undefined ? 'failed' : 'refused';
        const news = this.attempts.record(mntNs, status, kind, o.error ?? 'unknown');
        const fields = { ...containerFields(view), target: o.target, error: o.error };
        if (kind === 'refused') {
          report.refused++;
          this.log[news ? 'warn' : 'debug'](
            fields,
            'not a file of ours at an lxcfs target: left alone, looked at again after a backoff',
          );
        } else {
          report.failed++;
          this.log[news ? 'error' : 'debug'](
            fields,
            'remount failed; retried a sweep interval later, then after a backoff',
          );
        }
      }
      report.remounted += done.length;
    }
    return failedNs;
  }
}
