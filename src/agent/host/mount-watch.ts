// Mount notifications: one long-running `lxcfs-remount watch` (native/lxcfs-remount.c says why epoll on
// mountinfo, not fanotify or listmount) tells which mount namespaces changed their mount table, so an
// idle sweep reads none. The agent tells it which namespaces exist (`follow`); it answers each add and
// reports `changed` and `gone` (the watched process exited). Each of those, and the watcher's loss, is
// also told to the listener's `changed()`, so the agent sweeps when something happened instead of on a
// timer; a namespace that could not be watched, to its `coverageChanged()` (the agent then polls).
//
// Anything uncertain counts as a change: a confirmed add (the sweep's read may predate it), a failed
// add (not watched: read every sweep), the watcher's death (nothing is watched until it is back; it is
// restarted with backoff at a later sweep). So the worst case is today's cost, never a missed change.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../../log.js';
import type { ChosenProcess } from './chosen-process.js';
import { restartDelayMs } from './helper-process.js';

/** Who hears of changes; see the top of this file. */
export interface MountWatchListener {
  changed(): void;
  coverageChanged(): void;
}

export interface MountWatchConfig {
  helper: string;
  proc: string;
  backoff: { readonly firstMs: number; readonly maxMs: number };
}

/** How the watch of one mount namespace stands. */
export interface WatchStatus {
  /** The process whose mountinfo is watched. */
  pid: number;
  startTime: number;
  /** The watcher has confirmed it; a change from then on is reported. */
  confirmed: boolean;
  /** A change was reported (or may have been missed) since the last read. */
  dirty: boolean;
}

/**
 * A namespace to watch (its identity is the key) and the process chosen for it, whose mountinfo is read:
 * the helper watches it only if it is still that process, in that namespace, and not the host's.
 */
export type WatchTarget = ChosenProcess;

/** One line of the watcher. */
interface WatchEvent {
  event: 'added' | 'changed' | 'gone' | 'refused';
  key?: string;
  pid?: number;
  ok?: boolean;
  mntNs?: string;
  step?: string;
  errno?: string;
  error?: string;
  notEntered?: string;
  line?: string;
}

/** Out of descriptors: more namespaces than the limit allows are read at every sweep. */
const LIMIT_ERRNOS = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);

export class MountWatch {
  private child: ChildProcess | undefined;
  private readonly watches = new Map<string, WatchStatus>();
  private stopped = false;
  private startedAt = 0;
  private nextStartAt = 0;
  private delayMs = 0;
  /** Set while it is down after a failure, so the failure is logged once, not at every restart. */
  private failing = false;
  private limitLogged = false;

  /** The namespaces the last follow() asked for. */
  private wanted = 0;

  constructor(
    private readonly config: MountWatchConfig,
    private readonly log: Logger,
    private readonly listener: MountWatchListener = {
      changed: () => undefined,
      coverageChanged: () => undefined,
    },
  ) {}

  /** The watcher runs and watches (or is adding) every namespace it was asked to follow. */
  get complete(): boolean {
    return this.child !== undefined && this.watches.size >= this.wanted;
  }

  private changed(): void {
    this.listener.changed();
  }

  /** The watcher's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Namespaces whose watch is confirmed. */
  get watched(): number {
    let n = 0;
    for (const w of this.watches.values()) if (w.confirmed) n++;
    return n;
  }

  /** undefined when the namespace is not watched. */
  status(mntNs: string): WatchStatus | undefined {
    return this.watches.get(mntNs);
  }

  /** Its mountinfo is read now: changes reported from here on are news. */
  reading(mntNs: string): void {
    const watch = this.watches.get(mntNs);
    if (watch) watch.dirty = false;
  }

  /** Watches exactly `namespaces` (each through its pid), starting the watcher when it is down and due. */
  follow(namespaces: readonly WatchTarget[]): void {
    if (!this.child && !this.stopped && Date.now() >= this.nextStartAt) this.start();
    const child = this.child;
    if (!child) return;
    const wanted = new Map(namespaces.map((ns) => [ns.mntNs, ns]));
    this.wanted = wanted.size;
    let commands = '';
    for (const [key, watch] of this.watches) {
      const chosen = wanted.get(key);
      if (chosen?.pid === watch.pid && chosen.startTime === watch.startTime) continue;
      commands += `remove ${key}\n`;
      this.watches.delete(key);
    }
    for (const [key, { pid, startTime }] of wanted) {
      if (this.watches.has(key)) continue;
      commands += `add ${key} ${pid} ${startTime}\n`;
      this.watches.set(key, { pid, startTime, confirmed: false, dirty: true });
    }
    if (commands !== '') child.stdin!.write(commands);
  }

  /** Ends the watcher (it exits when its stdin ends) and starts no other. */
  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('close', resolve));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(timer);
  }

  private start(): void {
    const child = spawn(this.config.helper, ['watch', this.config.proc], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    this.startedAt = Date.now();
    let pending = '';
    let stderr = '';
    child.stdin!.on('error', () => undefined); // EPIPE when it died: its exit is handled below
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line !== '') this.handleLine(child, line);
    });
    child
      .stderr!.setEncoding('utf8')
      .on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-1000)));
    child.once('error', (err) => this.lost(child, { err }));
    child.once('close', (code, signal) =>
      this.lost(child, { code, signal, stderr: stderr.trim() }),
    );
    this.log.debug({ pid: child.pid }, 'mount watcher started');
  }

  /** A line that is not JSON cannot come from the helper we know: stop trusting this one. */
  private handleLine(child: ChildProcess, line: string): void {
    let event: WatchEvent;
    try {
      event = JSON.parse(line) as WatchEvent;
    } catch {
      child.kill('SIGKILL');
      return;
    }
    this.handle(event);
  }

  private handle(e: WatchEvent): void {
    if (e.event === 'refused') {
      this.log.warn({ line: e.line }, 'mount watcher refused a command');
      return;
    }
    const watch = this.watches.get(e.key!);
    // Events of an earlier watch of the key (another pid) are old news.
    if (!watch || watch.pid !== e.pid) return;
    if (e.event === 'changed') {
      watch.dirty = true;
      this.changed();
    } else if (e.event === 'gone') {
      this.watches.delete(e.key!);
      this.changed();
    } else if (e.ok && e.mntNs === e.key) {
      // The sweep read this table before the watch began: one more read closes that gap.
      watch.confirmed = true;
      watch.dirty = true;
      this.changed();
      if (this.failing) this.log.info({ pid: this.child?.pid }, 'mount notifications back');
      this.failing = false;
    } else {
      // Failed, or the pid is in another namespace by now (reused): not watched, retried at the next
      // sweep; until then the agent polls.
      this.watches.delete(e.key!);
      if (e.ok) this.child?.stdin!.write(`remove ${e.key}\n`);
      this.logAddFailure(e);
      this.listener.coverageChanged();
    }
  }

  private logAddFailure(e: WatchEvent): void {
    const fields = { mntNs: e.key, pid: e.pid, step: e.step, errno: e.errno, watching: e.mntNs };
    if (e.notEntered) {
      // Read-only, so nothing was at risk; still never silent. The next sweep chooses again.
      this.log.warn(
        { mntNs: e.key, pid: e.pid, notEntered: e.notEntered, err: e.error },
        'namespace not entered: mount watch refused',
      );
    } else if (e.errno && LIMIT_ERRNOS.has(e.errno) && !this.limitLogged) {
      this.limitLogged = true;
      this.log.warn(
        fields,
        "mount notifications: out of descriptors, namespaces beyond the limit are read at every sweep; raise the agent container's open-files limit (ulimit -n)",
      );
    } else {
      this.log.debug(fields, 'mount namespace not watched');
    }
  }

  /** The watcher is gone: nothing is watched until a later sweep restarts it after the backoff. */
  private lost(child: ChildProcess, how: Record<string, unknown>): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.watches.clear();
    if (this.stopped) return;
    this.delayMs = restartDelayMs(this.delayMs, Date.now() - this.startedAt, this.config.backoff);
    this.nextStartAt = Date.now() + this.delayMs;
    this.changed();
    if (!this.failing) {
      this.log.warn(
        { ...how, retryMs: this.delayMs },
        'mount notifications stopped: every sweep reads every mount table until the watcher is back',
      );
    }
    this.failing = true;
  }
}
