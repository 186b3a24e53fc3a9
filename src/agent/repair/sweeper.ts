// The stateful side of repair. One sweep: survey every container namespace, remember what was injected,
// remount what is broken (stale or missing), report processes a remount cannot help, and ask for reads
// inside the containers that have a reason for one (read-plan.ts). Sweeps run at start, after every
// lxcfs restart, when a notification says something changed, and on the agent's timers (sweep-schedule.ts);
// they never overlap. The sweeper learns about lxcfs from the supervisor through `LxcfsListener`, so
// neither needs the other.
import type { Logger } from '../../log.js';
import { CoalescingRunner } from '../../plumbing/coalescing-runner.js';
import type { LxcfsListener } from '../lxcfs/supervisor.js';
import type { MountWatch } from '../host/mount-watch.js';
import { DeadDescriptorReporter } from './dead-descriptors.js';
import {
  readsAfterSweep,
  readsEverything,
  strongerTrigger,
  type SweepTrigger,
} from './read-plan.js';
import { remember } from './remember.js';
import { remount, type RemountOutcome, type RemountPlan } from './remount.js';
import type { NotEntered } from '../host/chosen-process.js';
import type { AgentState, StateFile } from './state.js';
import {
  containerFields,
  newSurveyMemory,
  survey,
  type NamespaceView,
  type SurveyConfig,
} from './survey.js';

export interface SweepConfig extends SurveyConfig {
  fuseMount: string;
  helper: string;
  remountParallelism: number;
  remountBatchSize: number;
  helperTimeoutMs: number;
  /** The kernel has open_tree/move_mount: without them broken mounts are only reported. */
  remountSupported: boolean;
}

export interface SweepReport {
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
  deadDescriptorProcesses: number;
  /** mountinfo files read; the other namespaces' tables had not changed. */
  mountinfoRead: number;
  /** Namespaces with a confirmed mount watch after the sweep (0 with notifications off). */
  watched: number;
  durationMs: number;
  /** CPU time of the agent process during the sweep, remounts' waits included (0.1 ms steps). */
  cpuMs: number;
}

/** What a sweep reports for metrics (the agent's metrics implement it). */
export interface SweepMetrics {
  recordSweep(trigger: SweepTrigger, report: SweepReport, cpuSeconds: number): void;
  /** A namespace the helper (or the agent) would not enter, and why. */
  recordNotEntered(reason: NotEntered): void;
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
  /** dev of the running lxcfs' connection; undefined while it is down. */
  private liveDev: string | undefined;
  private swept = false;
  /** The trigger the next run runs as: requests made while one runs merge into it (strongerTrigger). */
  private nextTrigger: SweepTrigger | undefined;
  /** The state object last written: a state is saved only when it is another object (StateFile skips unchanged text). */
  private saved: AgentState | undefined;

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
  }

  /** A sweep has looked at every container since lxcfs first came up. */
  get hasSwept(): boolean {
    return this.swept;
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
      done: false,
      namespaces: 0,
      covered: 0,
      stale: 0,
      missing: 0,
      remounted: 0,
      failed: 0,
      notEntered: 0,
      deadDescriptorProcesses: 0,
      mountinfoRead: 0,
      watched: 0,
      durationMs: 0,
      cpuMs: 0,
    };
    const liveDev = this.liveDev;
    if (liveDev === undefined) return report;

    const { views, namespaces, mountinfoRead, changed } = survey(
      this.config,
      { liveDev, state: this.state },
      this.memory,
      { readAll: readsEverything(trigger), watch: this.watch },
    );
    // Our own remounts below change tables too: the watcher reports them, and the next sweep reads them.
    this.watch?.follow(namespaces);
    report.mountinfoRead = mountinfoRead;
    report.watched = this.watch?.watched ?? 0;
    // Saved before any remount, so an agent killed halfway still knows what was injected.
    this.state = remember(this.state, views, liveDev);
    const { namespaces: remembered } = this.state;
    this.deadDescriptors.keepOnly((mntNs) => Object.hasOwn(remembered, mntNs));
    this.save();
    report.done = true;
    report.namespaces = views.length;

    const plans: RemountPlan[] = [];
    for (const view of views) {
      const broken = view.statuses.filter((s) => s.state !== 'live');
      if (broken.length === 0) continue;
      const targetsIn = (state: string) =>
        broken.filter((s) => s.state === state).map((s) => s.target);
      const stale = targetsIn('stale');
      const missing = targetsIn('missing');
      report.stale += stale.length;
      report.missing += missing.length;
      this.log.warn({ ...containerFields(view), stale, missing }, 'broken lxcfs mounts');
      for (const s of broken)
        if (s.deadMountId !== undefined)
          this.deadDescriptors.remember(view.ns.mntNs, s.deadMountId);
      plans.push({
        mntNs: view.ns.mntNs,
        pid: view.ns.pid,
        startTime: view.ns.startTime,
        targets: broken,
      });
    }

    this.askForReads(trigger, views, changed);
    const unresolved = await this.repair(plans, views, liveDev, report);
    report.covered = views.filter((v) => !unresolved.has(v.ns.mntNs)).length;
    report.deadDescriptorProcesses = this.deadDescriptors.report(views, unresolved);

    report.durationMs = Math.round(performance.now() - started);
    const cpu = process.cpuUsage(cpuStarted);
    report.cpuMs = Math.round((cpu.user + cpu.system) / 100) / 10;
    this.metrics.recordSweep(trigger, report, (cpu.user + cpu.system) / 1e6);
    const busy = report.stale + report.missing + report.failed + report.notEntered > 0;
    this.log[busy ? 'info' : 'debug']({ trigger, ...report }, 'sweep done');
    return report;
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
    this.stateFile.save(this.state);
    this.saved = this.state;
  }

  /** Remounts and logs the outcome; returns the namespaces left with a broken target. */
  private async repair(
    plans: RemountPlan[],
    views: readonly NamespaceView[],
    liveDev: string,
    report: SweepReport,
  ): Promise<Set<string>> {
    if (plans.length === 0) return new Set();
    if (!this.config.remountSupported) {
      this.log.error(
        { namespaces: plans.length },
        'broken lxcfs mounts cannot be repaired on this kernel (no open_tree/move_mount): recreate these pods',
      );
      return new Set(plans.map((p) => p.mntNs));
    }
    const viewsByNs = new Map(views.map((v) => [v.ns.mntNs, v]));
    const outcomes = await remount(plans, {
      helper: this.config.helper,
      proc: this.config.proc,
      fuseMount: this.config.fuseMount,
      liveDev,
      parallelism: this.config.remountParallelism,
      batchSize: this.config.remountBatchSize,
      timeoutMs: this.config.helperTimeoutMs,
    });
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
        this.log.info(
          { ...containerFields(view), targets: done.map((o) => o.target), how },
          'remounted',
        );
      }
      for (const failed of mine.filter((o) => !o.ok)) {
        failedNs.add(mntNs);
        this.log.error(
          { ...containerFields(view), target: failed.target, error: failed.error },
          'remount failed; retried at the next sweep',
        );
      }
      report.remounted += done.length;
      report.failed += mine.length - done.length;
    }
    return failedNs;
  }
}
