// After periodic sweeps the agent reads lxcfs files inside a sample of containers (peek.ts): the one
// check that sees a file which does not answer although mountinfo shows it live. One batch at a time:
// a hung lxcfs holds a batch until the helper's timeout, and the next sweep must not stack another.
import type { Logger } from '../../log.js';
import { CoalescingRunner } from '../../plumbing/coalescing-runner.js';
import { peekContainers, type PeekReport } from './peek.js';
import { containerFields, type NamespaceView } from './survey.js';

export interface ReadsConfig {
  helper: string;
  proc: string;
  /** Containers read per batch. */
  sampleSize: number;
  timeoutMs: number;
}

/** What the reads report for metrics (the agent's metrics implement it). */
export interface ReadMetrics {
  recordReads(report: PeekReport): void;
}

export class ContainerReads {
  private readonly batches = new CoalescingRunner<void>();

  constructor(
    private readonly config: ReadsConfig,
    private readonly report: {
      metrics: ReadMetrics;
      log: Logger;
      /** A container was refused (its process is not the one chosen, or the namespace is the host's). */
      forgetChosenProcess: (mntNs: string) => void;
    },
  ) {}

  /** Reads inside a sample of `views`, unless a batch is still running; never rejects. */
  check(views: readonly NamespaceView[]): Promise<void> {
    return this.batches.runUnlessBusy(() => this.readOnce(views)).then(() => undefined);
  }

  private async readOnce(views: readonly NamespaceView[]): Promise<void> {
    const { metrics, log, forgetChosenProcess } = this.report;
    try {
      const reads = await peekContainers(this.config.helper, this.config.proc, views, this.config);
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
