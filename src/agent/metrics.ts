// The agent's Prometheus metrics (see plumbing/metrics.ts for the style). Names start with
// `lxcfs_webhook_agent_`.
import { Counter, Gauge, Histogram } from 'prom-client';
import { AGENT_EVENT_LOOP_PRECISION_MS } from '../config/defaults.js';
import { createRegistry } from '../plumbing/metrics.js';
import type { LxcfsMetrics } from './lxcfs/supervisor.js';
import type { NotEntered } from './host/chosen-process.js';
import type { AttemptSummary } from './repair/attempts.js';
import type { PeekReport } from './repair/peek.js';
import type { SaveOutcome } from './repair/state.js';
import type { SweepMetrics, SweepReport } from './repair/sweeper.js';

const PREFIX = 'lxcfs_webhook_agent_';

export class AgentMetrics implements LxcfsMetrics, SweepMetrics {
  readonly registry = createRegistry(PREFIX, AGENT_EVENT_LOOP_PRECISION_MS);
  private readonly registers = [this.registry];

  private readonly lxcfsUp = new Gauge({
    name: `${PREFIX}lxcfs_up`,
    help: '1 while lxcfs runs and answers probes',
    registers: this.registers,
  });
  private readonly lxcfsRestarts = new Counter({
    name: `${PREFIX}lxcfs_restarts_total`,
    help: 'lxcfs (re)starts after the first',
    registers: this.registers,
  });
  private readonly sweeps = new Counter({
    name: `${PREFIX}sweeps_total`,
    help: 'Sweeps over all container mount namespaces',
    labelNames: ['trigger'] as const,
    registers: this.registers,
  });
  private readonly sweepDuration = new Histogram({
    name: `${PREFIX}sweep_duration_seconds`,
    help: 'Wall time of one sweep, remounts included',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: this.registers,
  });
  private readonly lastSweepCpu = new Gauge({
    name: `${PREFIX}last_sweep_cpu_seconds`,
    help: 'CPU time the agent spent in its last sweep',
    registers: this.registers,
  });
  private readonly lastSweepMountinfoReads = new Gauge({
    name: `${PREFIX}last_sweep_mountinfo_reads`,
    help: 'mountinfo files the last sweep read; with mount notifications, only those of new or changed mount namespaces',
    registers: this.registers,
  });
  private readonly namespacesWatched = new Gauge({
    name: `${PREFIX}mount_namespaces_watched`,
    help: 'Mount namespaces whose changes the mount watcher reports (0 with notifications off or while the watcher is down)',
    registers: this.registers,
  });
  private readonly staleFound = new Counter({
    name: `${PREFIX}stale_found_total`,
    help: 'Targets found on a dead lxcfs connection',
    registers: this.registers,
  });
  private readonly missingFound = new Counter({
    name: `${PREFIX}missing_found_total`,
    help: 'Targets injected earlier whose lxcfs mount is gone',
    registers: this.registers,
  });
  private readonly remounts = new Counter({
    name: `${PREFIX}remounts_total`,
    help: 'Targets remounted in running containers',
    labelNames: ['result'] as const,
    registers: this.registers,
  });
  private readonly namespacesRefused = new Counter({
    name: `${PREFIX}namespaces_not_entered_total`,
    help: "Mount namespaces not entered (remount or read): the pid was another process by then, the process was in another namespace, or the namespace was the host's",
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  private readonly containersCovered = new Gauge({
    name: `${PREFIX}containers_covered`,
    help: 'Container mount namespaces with live lxcfs files after the last sweep',
    registers: this.registers,
  });
  private readonly unreadableFiles = new Gauge({
    name: `${PREFIX}unreadable_files`,
    help: 'lxcfs files that failed a one-byte read inside the containers sampled after the last sweep',
    registers: this.registers,
  });
  private readonly filesRead = new Counter({
    name: `${PREFIX}files_read_total`,
    help: 'One-byte reads of lxcfs files inside sampled containers',
    labelNames: ['result'] as const,
    registers: this.registers,
  });
  private readonly unrepairedTargets = new Gauge({
    name: `${PREFIX}unrepaired_targets`,
    help: 'lxcfs files in containers whose last remount failed (retried with backoff)',
    registers: this.registers,
  });
  private readonly refusedTargets = new Gauge({
    name: `${PREFIX}refused_targets`,
    help: 'lxcfs targets left alone as not ours: a symlink, FIFO, directory or another filesystem where the file was',
    registers: this.registers,
  });
  private readonly ignoredNamespaces = new Gauge({
    name: `${PREFIX}ignored_namespaces`,
    help: "Mount namespaces not repaired: of other user namespaces, or beyond their container's limit",
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  private readonly stateSaveErrors = new Counter({
    name: `${PREFIX}state_save_errors_total`,
    help: "Failed saves of the agent's state (e.g. ENOSPC); repairs go on",
    labelNames: ['errno'] as const,
    registers: this.registers,
  });
  private readonly stateSaved = new Gauge({
    name: `${PREFIX}state_saved`,
    help: "1 when the last save of the agent's state worked",
    registers: this.registers,
  });
  private readonly stateBytes = new Gauge({
    name: `${PREFIX}state_bytes`,
    help: "Size of the agent's state at its last save",
    registers: this.registers,
  });
  private readonly stateNamespaces = new Gauge({
    name: `${PREFIX}state_namespaces`,
    help: "Mount namespaces the agent's state remembers",
    registers: this.registers,
  });
  private readonly connectionAborts = new Counter({
    name: `${PREFIX}fuse_connection_aborts_total`,
    help: 'FUSE connections of an lxcfs that did not exit after SIGKILL, aborted',
    registers: this.registers,
  });
  private readonly deadDescriptorProcesses = new Gauge({
    name: `${PREFIX}dead_descriptor_processes`,
    help: 'Processes holding a descriptor on a dead lxcfs file: a remount cannot fix them, they need a restart',
    registers: this.registers,
  });

  /** Whether the last probe of lxcfs got an answer (false while it is down). */
  recordLxcfsAnswering(answering: boolean): void {
    this.lxcfsUp.set(answering ? 1 : 0);
  }

  recordLxcfsRestart(): void {
    this.lxcfsRestarts.inc();
  }

  recordConnectionAbort(): void {
    this.connectionAborts.inc();
  }

  recordStateSave(outcome: SaveOutcome, namespaces: number): void {
    this.stateSaved.set(outcome.ok ? 1 : 0);
    this.stateBytes.set(outcome.bytes);
    this.stateNamespaces.set(namespaces);
    if (!outcome.ok) this.stateSaveErrors.inc({ errno: outcome.code });
  }

  recordSweep(report: SweepReport, cpuSeconds: number, attempts: AttemptSummary): void {
    this.unrepairedTargets.set(attempts.failed);
    this.refusedTargets.set(attempts.refused);
    this.ignoredNamespaces.set({ reason: 'user-namespace' }, report.otherUserNamespaces);
    this.ignoredNamespaces.set({ reason: 'container-limit' }, report.overContainerLimit);
    this.sweeps.inc({ trigger: report.trigger });
    this.sweepDuration.observe(report.durationMs / 1000);
    this.lastSweepCpu.set(cpuSeconds);
    this.lastSweepMountinfoReads.set(report.mountinfoRead);
    this.namespacesWatched.set(report.watched);
    this.staleFound.inc(report.stale);
    this.missingFound.inc(report.missing);
    this.remounts.inc({ result: 'done' }, report.remounted);
    this.remounts.inc({ result: 'failed' }, report.failed);
    this.remounts.inc({ result: 'not-entered' }, report.notEntered);
    this.containersCovered.set(report.covered);
    this.deadDescriptorProcesses.set(report.deadDescriptorProcesses);
  }

  recordNotEntered(reason: NotEntered): void {
    this.namespacesRefused.inc({ reason });
  }

  recordReads(reads: PeekReport): void {
    this.unreadableFiles.set(reads.unreadable.length);
    this.filesRead.inc({ result: 'ok' }, reads.files - reads.unreadable.length);
    this.filesRead.inc({ result: 'failed' }, reads.unreadable.length);
    for (const { notEntered } of reads.notEntered) this.recordNotEntered(notEntered);
  }
}
