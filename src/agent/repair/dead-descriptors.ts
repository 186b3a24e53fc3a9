// Processes a remount cannot help: they hold a descriptor opened through a dead lxcfs mount, and keep
// reading errors until they reopen the file. Remembers which dead mounts were swapped out of which
// namespace, finds their holders, and logs each holder once.
import type { Logger } from '../../log.js';
import { findDeadDescriptors } from '../host/open-fds.js';
import { containerFields, type NamespaceView } from './survey.js';

export class DeadDescriptorReporter {
  /** Per namespace, ids of dead mounts that were swapped out: descriptors may still hold them. */
  private readonly deadMounts = new Map<string, Set<number>>();
  /** Holders already logged, so each is reported once. */
  private reported = new Set<string>();

  constructor(
    private readonly proc: string,
    private readonly log: Logger,
  ) {}

  /** A dead mount about to be replaced in `mntNs`. */
  remember(mntNs: string, mountId: number): void {
    let ids = this.deadMounts.get(mntNs);
    if (!ids) this.deadMounts.set(mntNs, (ids = new Set()));
    ids.add(mountId);
  }

  /** Drops what it knows of namespaces that are gone. */
  keepOnly(alive: (mntNs: string) => boolean): void {
    for (const ns of this.deadMounts.keys()) if (!alive(ns)) this.deadMounts.delete(ns);
  }

  /**
   * Logs each new holder and returns how many processes hold one. A namespace's dead mounts are
   * forgotten once they are swapped out (not `unresolved`) and nobody holds them.
   */
  report(views: readonly NamespaceView[], unresolved: ReadonlySet<string>): number {
    const holders = new Set<number>();
    const seen = new Set<string>();
    for (const view of views) {
      const deadIds = this.deadMounts.get(view.ns.mntNs);
      if (!deadIds) continue;
      const found = findDeadDescriptors(this.proc, view.ns.pids, deadIds);
      if (found.length === 0 && !unresolved.has(view.ns.mntNs))
        this.deadMounts.delete(view.ns.mntNs);
      for (const d of found) {
        holders.add(d.pid);
        const key = `${d.pid}:${d.fd}:${d.mountId}`;
        seen.add(key);
        if (this.reported.has(key)) continue;
        this.log.warn(
          { ...containerFields(view), holderPid: d.pid, comm: d.comm, fd: d.fd },
          'process holds a descriptor on a dead lxcfs file: a remount cannot fix it, restart the process',
        );
      }
    }
    this.reported = seen;
    return holders.size;
  }
}
