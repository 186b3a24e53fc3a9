// One sweep over every container mount namespace on the node: classify each injected target as live,
// stale or missing, remember what was injected, remount what is broken, verify, and report processes
// that a remount cannot help. Runs at start, after every lxcfs restart, and periodically; sweeps never
// overlap.
import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import { classifyTargets, isFuse, isOurMount, type TargetStatus } from './classify.js';
import type { AgentMetrics } from './metrics.js';
import { parseMountinfo, topMountAt } from './mountinfo.js';
import { listContainerNamespaces, type ContainerNamespace } from './namespaces.js';
import { findDeadDescriptors } from './open-fds.js';
import { parsePodIdentity, type PodIdentity } from './pod-identity.js';
import { remount, type RemountOutcome, type RemountPlan } from './remount.js';
import type { AgentState, StateFile } from './state.js';

export interface SweepConfig {
  proc: string;
  fuseMount: string;
  helper: string;
  /** The files the webhook may inject: the only targets ever touched. */
  files: readonly string[];
  remountParallelism: number;
  remountBatchSize: number;
  helperTimeoutMs: number;
}

/** One container namespace as a sweep sees it. */
export interface NamespaceView {
  ns: ContainerNamespace;
  identity: PodIdentity;
  /** Our targets in it (never empty). */
  statuses: TargetStatus[];
  /** devs of the FUSE mounts on its targets, to know which old lxcfs connections still matter. */
  fuseDevs: Set<string>;
  /** Targets whose visible mount is on a connection of ours, classified or not: what `peek` reads. */
  ourTargets: string[];
}

/** A procfs file's text; undefined when its process has exited. */
function readProcFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The stable log fields naming a container. */
export function containerFields(view: NamespaceView) {
  return { podUid: view.identity.podUid, containerId: view.identity.containerId, mntNs: view.ns.mntNs, pid: view.ns.pid };
}

/** Pod identities by namespace, valid while the representative pid stays the same process. */
export type IdentityCache = Map<string, { pid: number; identity: PodIdentity }>;

/**
 * Read-only: every container namespace that has targets of ours, classified. Used by sweeps and by
 * `check node`. Namespaces without anything of ours cost one mountinfo read each.
 */
export function survey(config: SweepConfig, liveDev: string, state: AgentState, identities: IdentityCache = new Map()): NamespaceView[] {
  const knownDevs = new Set(state.knownDevs);
  const targets = new Set(config.files);
  /** undefined once the process has exited */
  const identityOf = (ns: ContainerNamespace): PodIdentity | undefined => {
    const cached = identities.get(ns.mntNs);
    if (cached?.pid === ns.pid) return cached.identity;
    const cgroup = readProcFile(`${config.proc}/${ns.pid}/cgroup`);
    if (cgroup === undefined) return undefined;
    const identity = parsePodIdentity(cgroup);
    identities.set(ns.mntNs, { pid: ns.pid, identity });
    return identity;
  };

  const views: NamespaceView[] = [];
  for (const ns of listContainerNamespaces(config.proc)) {
    const mountinfo = readProcFile(`${config.proc}/${ns.pid}/mountinfo`);
    if (mountinfo === undefined) continue;
    const mounts = parseMountinfo(mountinfo, targets);
    const memory = state.namespaces[ns.mntNs];
    // The same inode number on another cgroup is a new namespace: what we remember is not about it.
    const remembered = memory && memory.cgroup === identityOf(ns)?.cgroup ? memory.targets : {};
    const statuses = classifyTargets({ mounts, liveDev, knownDevs, remembered, files: config.files });
    const identity = statuses.length > 0 ? identityOf(ns) : undefined;
    if (identity === undefined) continue;
    const devs = { liveDev, knownDevs };
    const ourTargets = config.files.filter((target) => {
      const top = topMountAt(mounts, target);
      return top !== undefined && isOurMount(top, devs);
    });
    views.push({ ns, identity, statuses, fuseDevs: new Set(mounts.filter(isFuse).map((m) => m.dev)), ourTargets });
  }
  const seen = new Set(views.map((v) => v.ns.mntNs));
  for (const mntNs of identities.keys()) if (!seen.has(mntNs)) identities.delete(mntNs);
  return views;
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
  deadDescriptorProcesses: number;
  durationMs: number;
}

export class Sweeper {
  private running: Promise<SweepReport> | undefined;
  private queued: Promise<SweepReport> | undefined;
  /** Per namespace, ids of dead mounts that were swapped out: descriptors may still hold them. */
  private readonly deadMounts = new Map<string, Set<number>>();
  private readonly identities: IdentityCache = new Map();
  /** Holders already logged, so each is reported once. */
  private reportedHolders = new Set<string>();
  /** What the last sweep saw, for reads inside containers between sweeps. */
  private lastViews: readonly NamespaceView[] = [];

  constructor(
    private readonly config: SweepConfig,
    private readonly stateFile: StateFile,
    private state: AgentState,
    /** dev of the running lxcfs; undefined while it is down. */
    private readonly liveDev: () => string | undefined,
    private readonly remountSupported: boolean,
    private readonly metrics: AgentMetrics,
    private readonly log: Logger,
  ) {}

  latestViews(): readonly NamespaceView[] {
    return this.lastViews;
  }

  /** Remembers a newly started lxcfs' connection: its mounts are ours, now and after it dies. */
  rememberDev(dev: string): void {
    if (this.state.knownDevs.includes(dev)) return;
    this.state = { ...this.state, knownDevs: [...this.state.knownDevs, dev] };
    this.stateFile.save(this.state);
  }

  /** Runs a sweep; a request during a running sweep gets one more sweep right after it. */
  sweep(trigger: string): Promise<SweepReport> {
    if (!this.running) {
      this.running = this.runOnce(trigger).finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.sweep(trigger);
      });
    return this.queued;
  }

  private async runOnce(trigger: string): Promise<SweepReport> {
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    const report: SweepReport = { done: false, namespaces: 0, covered: 0, stale: 0, missing: 0, remounted: 0, failed: 0, deadDescriptorProcesses: 0, durationMs: 0 };
    const liveDev = this.liveDev();
    if (liveDev === undefined) return report;

    const views = survey(this.config, liveDev, this.state, this.identities);
    this.lastViews = views;
    this.remember(views, liveDev);
    report.done = true;
    report.namespaces = views.length;

    const plans: RemountPlan[] = [];
    for (const view of views) {
      const broken = view.statuses.filter((s) => s.state !== 'live');
      if (broken.length === 0) continue;
      const targetsIn = (state: string) => broken.filter((s) => s.state === state).map((s) => s.target);
      const stale = targetsIn('stale');
      const missing = targetsIn('missing');
      report.stale += stale.length;
      report.missing += missing.length;
      this.log.warn({ ...containerFields(view), stale, missing }, 'broken lxcfs mounts');
      for (const s of broken) if (s.deadMountId !== undefined) this.deadMountsOf(view.ns.mntNs).add(s.deadMountId);
      plans.push({ mntNs: view.ns.mntNs, pid: view.ns.pid, targets: broken });
    }
    this.metrics.staleFound.inc(report.stale);
    this.metrics.missingFound.inc(report.missing);

    const unresolved = await this.repair(plans, views, liveDev, report);
    report.covered = views.filter((v) => !unresolved.has(v.ns.mntNs)).length;
    report.deadDescriptorProcesses = this.reportDeadDescriptors(views, unresolved);

    report.durationMs = Math.round(performance.now() - started);
    const cpu = process.cpuUsage(cpuStarted);
    this.metrics.sweeps.inc({ trigger });
    this.metrics.sweepDuration.observe(report.durationMs / 1000);
    this.metrics.lastSweepCpu.set((cpu.user + cpu.system) / 1e6);
    this.metrics.containersCovered.set(report.covered);
    this.metrics.deadDescriptorProcesses.set(report.deadDescriptorProcesses);
    const busy = report.stale + report.missing + report.failed > 0;
    this.log[busy ? 'info' : 'debug']({ trigger, ...report }, 'sweep done');
    return report;
  }

  /**
   * Updates what the agent remembers: the targets of every namespace with something of ours (dropping
   * namespaces that are gone), and the lxcfs connections still referenced by some mount. Saved before
   * any remount, so an agent killed halfway still knows what was injected.
   */
  private remember(views: readonly NamespaceView[], liveDev: string): void {
    const namespaces: AgentState['namespaces'] = {};
    const referenced = new Set([liveDev]);
    for (const view of views) {
      const before = this.state.namespaces[view.ns.mntNs];
      const targets = before?.cgroup === view.identity.cgroup ? { ...before.targets } : {};
      for (const s of view.statuses) targets[s.target] = { lxcfsPath: s.lxcfsPath, readOnly: s.readOnly };
      namespaces[view.ns.mntNs] = { cgroup: view.identity.cgroup, targets };
      for (const dev of view.fuseDevs) if (this.state.knownDevs.includes(dev)) referenced.add(dev);
    }
    for (const mntNs of this.deadMounts.keys()) if (!(mntNs in namespaces)) this.deadMounts.delete(mntNs);
    this.state = { knownDevs: this.state.knownDevs.filter((d) => referenced.has(d)), namespaces };
    this.stateFile.save(this.state);
  }

  /** Remounts and logs the outcome; returns the namespaces left with a broken target. */
  private async repair(plans: RemountPlan[], views: readonly NamespaceView[], liveDev: string, report: SweepReport): Promise<Set<string>> {
    if (plans.length === 0) return new Set();
    if (!this.remountSupported) {
      this.log.error({ namespaces: plans.length }, 'broken lxcfs mounts cannot be repaired on this kernel (no open_tree/move_mount): recreate these pods');
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
      const done = mine.filter((o) => o.ok);
      if (done.length > 0) {
        const how = [...new Set(done.map((o) => o.how))].join(',');
        this.log.info({ ...containerFields(view), targets: done.map((o) => o.target), how }, 'remounted');
      }
      for (const failed of mine.filter((o) => !o.ok)) {
        failedNs.add(mntNs);
        this.log.error({ ...containerFields(view), target: failed.target, err: failed.error }, 'remount failed; retried at the next sweep');
      }
      report.remounted += done.length;
      report.failed += mine.length - done.length;
    }
    this.metrics.remounts.inc({ result: 'done' }, report.remounted);
    this.metrics.remounts.inc({ result: 'failed' }, report.failed);
    return failedNs;
  }

  private deadMountsOf(mntNs: string): Set<number> {
    let ids = this.deadMounts.get(mntNs);
    if (!ids) this.deadMounts.set(mntNs, (ids = new Set()));
    return ids;
  }

  /**
   * Logs each process holding a descriptor on a dead lxcfs file once, and returns how many there are.
   * A namespace's dead mounts are forgotten once they are swapped out and nobody holds them.
   */
  private reportDeadDescriptors(views: readonly NamespaceView[], unresolved: ReadonlySet<string>): number {
    const holders = new Set<number>();
    const seen = new Set<string>();
    for (const view of views) {
      const deadIds = this.deadMounts.get(view.ns.mntNs);
      if (!deadIds) continue;
      const found = findDeadDescriptors(this.config.proc, view.ns.pids, deadIds);
      if (found.length === 0 && !unresolved.has(view.ns.mntNs)) this.deadMounts.delete(view.ns.mntNs);
      for (const d of found) {
        holders.add(d.pid);
        const key = `${d.pid}:${d.fd}:${d.mountId}`;
        seen.add(key);
        if (this.reportedHolders.has(key)) continue;
        this.log.warn(
          { ...containerFields(view), holderPid: d.pid, comm: d.comm, fd: d.fd },
          'process holds a descriptor on a dead lxcfs file: a remount cannot fix it, restart the process',
        );
      }
    }
    this.reportedHolders = seen;
    return holders.size;
  }
}
