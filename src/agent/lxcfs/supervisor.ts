// Keeps one lxcfs running: starts it (clearing dead mounts first), binds it into the anchor, restarts
// it with backoff when it exits, and kills it when it stops answering for longer than a grace period.
// A probe is one read of a file a helper process keeps open, with a timeout (probe.ts, HeldFileProbe),
// so a hung lxcfs never blocks the agent. Its exit is the child's exit event: nothing polls for it. What happens
// to lxcfs is told to an `LxcfsListener` (the sweeper), which is all the supervisor knows of repair.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  LXCFS_RESTART_BACKOFF,
  LXCFS_START_TIMEOUT_MS,
  LXCFS_STOP_TIMEOUT_MS,
} from '../../config/defaults.js';
import type { Logger } from '../../log.js';
import { CoalescingRunner } from '../../plumbing/coalescing-runner.js';
import { bindIntoAnchor, clearLxcfsMounts, type AnchorLayout } from './anchor.js';
import { HeldFileProbe, type ProbeResult } from './probe.js';
import {
  findLxcfsServing,
  killAndWait,
  startLxcfs,
  type LxcfsCommand,
  type LxcfsExit,
  type RunningLxcfs,
} from './process.js';

export interface SupervisorConfig {
  layout: AnchorLayout;
  lxcfs: LxcfsCommand;
  proc: string;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  hangGraceMs: number;
}

export interface LxcfsListener {
  /** lxcfs mounted on a new connection, before pods can reach it: mounts on `dev` are ours from now on. */
  lxcfsMounted(dev: string): void;
  /** lxcfs serves the anchor (its first start, or a restart): time to repair. */
  lxcfsUp(dev: string, restarted: boolean): Promise<void>;
  /** lxcfs is gone (exited, or killed as hung); a restart follows. */
  lxcfsDown(): void;
}

/** What the supervisor reports for metrics (the agent's metrics implement it). */
export interface LxcfsMetrics {
  recordLxcfsAnswering(answering: boolean): void;
  recordLxcfsRestart(): void;
}

export interface LxcfsStatus {
  pid?: number;
  /** dev of its FUSE connection while it runs. */
  dev?: string;
  /** The last probe of the running lxcfs, once there was one. */
  lastProbe?: ProbeResult;
}

export class Supervisor {
  private current: RunningLxcfs | undefined;
  private lastProbe: ProbeResult | undefined;
  /** When the first probe lxcfs has not answered was sent: the hang grace counts from there. */
  private failingSince: number | undefined;
  /** Kills lxcfs when the hang grace is over, between probe ticks. */
  private hangTimer: NodeJS.Timeout | undefined;
  private readonly probes = new CoalescingRunner<ProbeResult>();
  /** Probes of the running lxcfs; a new one for each lxcfs. */
  private prober: HeldFileProbe | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private nextBackoffMs: number = LXCFS_RESTART_BACKOFF.firstMs;
  private stopping = false;
  /** A start in progress, which stop() waits for so it cannot leave an lxcfs behind. */
  private starting: Promise<void> | undefined;
  /** Ends stop()'s wait for lxcfs to exit on SIGTERM. */
  private readonly hurried = new AbortController();

  constructor(
    private readonly config: SupervisorConfig,
    private readonly listener: LxcfsListener,
    private readonly metrics: LxcfsMetrics,
    private readonly log: Logger,
  ) {}

  status(): LxcfsStatus {
    return { pid: this.current?.pid, dev: this.current?.dev, lastProbe: this.lastProbe };
  }

  /** First start: any failure is thrown, so the agent exits with it. */
  async start(): Promise<void> {
    await this.track(this.bringUp(false));
    this.probeTimer = setInterval(() => void this.probe(), this.config.probeIntervalMs);
  }

  /** Stops lxcfs with SIGTERM (SIGKILL after a timeout) and clears its mounts. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.probeTimer);
    clearTimeout(this.restartTimer);
    this.clearHang();
    await this.starting?.catch(() => undefined);
    const lxcfs = this.current;
    this.current = undefined;
    this.prober?.close();
    if (lxcfs) {
      lxcfs.kill('SIGTERM');
      lxcfs.kill('SIGCONT'); // a stopped process acts on SIGTERM only once it runs
      const waited = sleep(LXCFS_STOP_TIMEOUT_MS, undefined, {
        ref: false,
        signal: this.hurried.signal,
      }).catch(() => undefined);
      const exited = await Promise.race([lxcfs.exited, waited]);
      if (!exited) {
        this.log.warn(
          { lxcfsPid: lxcfs.pid, hurried: this.hurried.signal.aborted },
          'lxcfs has not exited on SIGTERM: killing it',
        );
        lxcfs.kill('SIGKILL');
        await lxcfs.exited;
      }
    }
    await clearLxcfsMounts(this.config.layout, this.log);
    this.metrics.recordLxcfsAnswering(false);
    this.listener.lxcfsDown();
  }

  /** A stop in progress kills lxcfs now instead of waiting for it to exit on SIGTERM. */
  hurry(): void {
    this.hurried.abort();
  }

  private track(start: Promise<void>): Promise<void> {
    this.starting = start.finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async bringUp(restarted: boolean): Promise<void> {
    const leftovers = findLxcfsServing(this.config.proc, this.config.lxcfs.fuseMount);
    if (leftovers.length > 0) {
      this.log.warn({ pids: leftovers }, 'killing lxcfs left behind by an earlier agent');
      await killAndWait(this.config.proc, leftovers, LXCFS_STOP_TIMEOUT_MS);
    }
    await clearLxcfsMounts(this.config.layout, this.log);
    const lxcfs = await startLxcfs(this.config.lxcfs, this.log, LXCFS_START_TIMEOUT_MS);
    this.listener.lxcfsMounted(lxcfs.dev);
    try {
      await bindIntoAnchor(this.config.layout);
    } catch (err) {
      lxcfs.kill('SIGKILL');
      await lxcfs.exited;
      throw err;
    }
    this.current = lxcfs;
    this.prober = new HeldFileProbe(this.config.layout.helper, this.config.lxcfs.fuseMount);
    this.clearHang();
    void lxcfs.exited.then((exit) => this.onExit(lxcfs, exit));
    this.log.info(
      { lxcfsPid: lxcfs.pid, dev: lxcfs.dev, restarted },
      'lxcfs is up and bound into the anchor',
    );
    await this.probe();
    await this.listener.lxcfsUp(lxcfs.dev, restarted);
  }

  private onExit(lxcfs: RunningLxcfs, exit: LxcfsExit): void {
    if (this.stopping || this.current !== lxcfs) return;
    this.current = undefined;
    this.prober?.close();
    this.lastProbe = undefined;
    this.clearHang();
    this.metrics.recordLxcfsAnswering(false);
    this.listener.lxcfsDown();
    const fields = { lxcfsPid: lxcfs.pid, code: exit.code, signal: exit.signal };
    if (exit.fatal) this.log.error(fields, `lxcfs failed: ${exit.fatal.fix}`);
    else this.log.error(fields, 'lxcfs exited; restarting it');
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.nextBackoffMs;
    this.nextBackoffMs = Math.min(delay * 2, LXCFS_RESTART_BACKOFF.maxMs);
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    this.metrics.recordLxcfsRestart();
    try {
      await this.track(this.bringUp(true));
    } catch (err) {
      if (this.stopping) return;
      this.log.error({ err, retryInMs: this.nextBackoffMs }, 'lxcfs restart failed');
      this.scheduleRestart();
    }
  }

  /** Reads through FUSE; lxcfs that has not answered for hangGraceMs is killed (and so restarted). */
  private async probe(): Promise<void> {
    const lxcfs = this.current;
    const prober = this.prober;
    if (!lxcfs || !prober) return;
    const sentAt = Date.now();
    const result = await this.probes.runUnlessBusy(() => prober.probe(this.config.probeTimeoutMs));
    if (result === undefined || this.current !== lxcfs) return;
    this.lastProbe = result;
    this.metrics.recordLxcfsAnswering(result.ok);
    if (result.ok) {
      this.clearHang();
      this.nextBackoffMs = LXCFS_RESTART_BACKOFF.firstMs;
      return;
    }
    if (this.failingSince === undefined) {
      this.failingSince = sentAt;
      this.hangTimer = setTimeout(
        () => this.killHung(lxcfs),
        Math.max(0, sentAt + this.config.hangGraceMs - Date.now()),
      );
    }
    this.log.warn(
      { lxcfsPid: lxcfs.pid, error: result.error, failingMs: Date.now() - this.failingSince },
      'lxcfs did not answer a probe',
    );
  }

  private killHung(lxcfs: RunningLxcfs): void {
    if (this.current !== lxcfs || this.failingSince === undefined) return;
    this.log.error(
      { lxcfsPid: lxcfs.pid, failingMs: Date.now() - this.failingSince },
      'lxcfs is hung: killing it to restart it',
    );
    lxcfs.kill('SIGKILL');
  }

  private clearHang(): void {
    clearTimeout(this.hangTimer);
    this.hangTimer = undefined;
    this.failingSince = undefined;
  }
}
