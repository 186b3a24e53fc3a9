// New containers from the kernel's events instead of scans of /proc: every runtime makes a cgroup per
// container, and the native helper's `cgroups` (native/lxcfs-remount.c says why inotify) reports each
// directory created in the cgroup hierarchy. The namespace of the container comes a little later, so
// the agent sweeps a few times after each (defaults.ts, NEW_CGROUP_SWEEPS_MS); once a sweep has found the
// namespace, the mount watcher reports its changes.
//
// Coverage is all or nothing: only while every directory is watched (`complete`) may the agent stop
// polling. A watch that failed (the inotify watch limit), events the kernel dropped, or the helper's
// death make it incomplete until a fresh helper, started after a backoff, has watched everything again.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { HelperProcess, restartDelayMs, type Backoff } from './helper-process.js';

/** The hierarchy where a container's cgroup appears: v2's single one, or v1's memory controller (lxcfs' meminfo needs it). */
export function cgroupHierarchy(cgroupRoot = '/sys/fs/cgroup'): string | undefined {
  if (existsSync(join(cgroupRoot, 'cgroup.controllers'))) return cgroupRoot;
  const memory = join(cgroupRoot, 'memory');
  return existsSync(join(memory, 'memory.limit_in_bytes')) ? memory : undefined;
}

export interface CgroupEventsConfig {
  helper: string;
  /** The hierarchy to watch (cgroupHierarchy()). */
  root: string;
  backoff: Backoff;
}

export interface CgroupListener {
  /** A cgroup was created (or may have been: events were dropped). */
  cgroupCreated(): void;
  /** `complete` changed: every cgroup is watched, or no longer. */
  coverageChanged(): void;
}

/** One line of the helper. */
interface CgroupEvent {
  event: 'ready' | 'created' | 'overflow' | 'incomplete';
  ok?: boolean;
  watched?: number;
  path?: string;
  step?: string;
  errno?: string;
}

export class CgroupEvents {
  private child: HelperProcess<CgroupEvent> | undefined;
  private watchingAll = false;
  private stopped = false;
  private startedAt = 0;
  private delayMs = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Set while it fails, so a failure is logged once, not at every restart. */
  private failing = false;

  constructor(
    private readonly config: CgroupEventsConfig,
    private readonly listener: CgroupListener,
    private readonly log: Logger,
  ) {}

  /** Every cgroup is watched: a new container is reported. */
  get complete(): boolean {
    return this.watchingAll;
  }

  /** The helper's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopped || this.child) return;
    const child: HelperProcess<CgroupEvent> = new HelperProcess(
      this.config.helper,
      ['cgroups', this.config.root],
      { line: (event) => this.handle(child, event), gone: (how) => this.lost(child, how) },
    );
    this.child = child;
    this.startedAt = Date.now();
    this.log.debug({ pid: child.pid, root: this.config.root }, 'cgroup watcher started');
  }

  /** Ends the helper and starts no other. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.child?.end(1000);
  }

  private handle(child: HelperProcess<CgroupEvent>, event: CgroupEvent): void {
    if (event.event === 'created' || event.event === 'overflow') {
      this.listener.cgroupCreated();
    } else if (event.event === 'ready' && event.ok === true) {
      this.watchingAll = true;
      if (this.failing) this.log.info({ watched: event.watched }, 'cgroup notifications back');
      this.failing = false;
      this.log.debug({ watched: event.watched }, 'every cgroup watched');
      this.listener.coverageChanged();
    } else {
      // Not every cgroup is watched: a fresh helper walks the hierarchy again after the backoff.
      this.fail({ step: event.step, errno: event.errno, watched: event.watched });
      child.kill();
    }
  }

  /** The helper is gone: polling until another one, started after the backoff, watches everything. */
  private lost(child: HelperProcess<CgroupEvent>, how: Record<string, unknown>): void {
    if (this.child !== child) return;
    this.child = undefined;
    if (this.stopped) return;
    this.delayMs = restartDelayMs(this.delayMs, Date.now() - this.startedAt, this.config.backoff);
    this.restartTimer = setTimeout(() => this.start(), this.delayMs);
    this.fail(how);
  }

  private fail(how: Record<string, unknown>): void {
    const was = this.watchingAll;
    this.watchingAll = false;
    if (!this.failing) {
      const limit = how.errno === 'ENOSPC' || how.errno === 'EMFILE';
      this.log.warn(
        { ...how, root: this.config.root },
        limit
          ? 'cgroup notifications: out of inotify watches, the agent polls every --sweep-interval; raise fs.inotify.max_user_watches on the node'
          : 'cgroup notifications stopped: the agent polls every --sweep-interval until they are back',
      );
    }
    this.failing = true;
    if (was) this.listener.coverageChanged();
  }
}
