// Reads inside containers (peek.ts): the one check that sees a file which does not answer although
// mountinfo shows it live. Sweeps ask for them when there is a reason (read-plan.ts): a sample of every
// container after start, an lxcfs restart or the safety net's sweep, and each container whose mounts
// changed (a new one among them). Requests queue up by namespace and are read one batch at a time: a
// hung lxcfs holds a batch until the helper's timeout, and no second one may stack on it.
import type { Logger } from '../../log.js';
import type { SweepReads } from './sweeper.js';
import { peekContainers, peekTargets, sample, type PeekReport } from './peek.js';
import { containerFields, type NamespaceView } from './survey.js';

export interface ReadsConfig {
  helper: string;
  proc: string;
  /** Containers in a sample, and at most in one batch. */
  sampleSize: number;
  timeoutMs: number;
}

/** What the reads report for metrics (the agent's metrics implement it). */
export interface ReadMetrics {
  recordReads(report: PeekReport): void;
}

export class ContainerReads implements SweepReads {
  /** Views waiting to be read, by namespace: a later request for one replaces its view. */
  private readonly queue = new Map<string, NamespaceView>();
  private draining: Promise<void> | undefined;

  constructor(
    private readonly config: ReadsConfig,
    private readonly report: {
      metrics: ReadMetrics;
      log: Logger;
      /** A container was refused (its process is not the one chosen, or the namespace is the host's). */
      forgetChosenProcess: (mntNs: string) => void;
    },
  ) {}

  sample(views: readonly NamespaceView[]): void {
    const readable = views.filter((v) => peekTargets(v).length > 0);
    this.read(sample(readable, this.config.sampleSize));
  }

  read(views: readonly NamespaceView[]): void {
    for (const view of views) this.queue.set(view.ns.mntNs, view);
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  private async drain(): Promise<void> {
    while (this.queue.size > 0) {
      const batch = [...this.queue.values()].slice(0, this.config.sampleSize);
      for (const view of batch) this.queue.delete(view.ns.mntNs);
      await this.readBatch(batch);
    }
  }

  /** Never rejects: a failure is logged. */
  private async readBatch(views: readonly NamespaceView[]): Promise<void> {
    const { metrics, log, forgetChosenProcess } = this.report;
    try {
      const reads = await peekContainers(this.config.helper, this.config.proc, views, {
        sampleSize: views.length,
        timeoutMs: this.config.timeoutMs,
      });
      metrics.recordReads(reads);
      // One line per container, so a dead lxcfs does not cost a line per file.
      const byContainer = new Map<NamespaceView, Record<string, string>>();
      for (const { view, target, error } of reads.unreadable)
        byContainer.set(view, { ...byContainer.get(view), [target]: error });
      for (const [view, errors] of byContainer)
        log.warn(
          { ...containerFields(view), errors },
          'lxcfs files cannot be read inside the container',
        );
      for (const { view, notEntered, error } of reads.notEntered) {
        forgetChosenProcess(view.ns.mntNs);
        log.error(
          { ...containerFields(view), notEntered, err: error },
          'namespace not entered: read inside the container refused',
        );
      }
    } catch (err) {
      log.error({ err }, 'reading lxcfs files inside containers failed');
    }
  }
}
