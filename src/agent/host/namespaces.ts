// Finds every mount namespace on the node other than the host's and the agent's own, by the
// /proc/<pid>/ns/mnt links of all processes (the agent runs with hostPID). Reads only procfs, which
// never waits on FUSE, with synchronous calls: they are fast and keep a sweep's view consistent.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ContainerNamespace {
  /** The namespace's identity as the kernel prints it: `mnt:[4026532301]`. */
  mntNs: string;
  /**
   * The oldest process whose pid namespace is also the one its children get: its root and mountinfo
   * are the container's (not those of a runtime process halfway through unshare()), and it lives as long
   * as the container (its init), unlike an exec probe or `kubectl exec` that may be gone by the remount.
   */
  pid: number;
  /** Every process in the namespace, for finding descriptors opened on dead files. */
  pids: number[];
}

/** When the process started (clock ticks after boot); Infinity once it has exited. */
function startTime(proc: string, pid: number): number {
  try {
    const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses; starttime is field 22.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return Infinity;
  }
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined; // the process exited, or is a zombie
  }
}

/** The oldest process whose pid namespace is also its children's; undefined when none is (yet). */
function electRepresentative(proc: string, pids: readonly number[]): number | undefined {
  const oldestFirst =
    pids.length === 1 ? pids : [...pids].sort((a, b) => startTime(proc, a) - startTime(proc, b));
  return oldestFirst.find((p) => {
    const pidNs = readLink(`${proc}/${p}/ns/pid`);
    return pidNs !== undefined && pidNs === readLink(`${proc}/${p}/ns/pid_for_children`);
  });
}

/**
 * `representatives` carries each namespace's representative from one call to the next: it is kept
 * while it is still in the namespace (a process that joined since is younger, so the election would
 * not change), and only new namespaces and vanished representatives pay for the election's reads.
 */
export function listContainerNamespaces(
  proc: string,
  representatives: Map<string, number> = new Map(),
): ContainerNamespace[] {
  const skipped = new Set([readLink(`${proc}/1/ns/mnt`), readLink('/proc/self/ns/mnt')]);
  const byNamespace = new Map<string, number[]>();
  for (const name of readdirSync(proc)) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const mntNs = readLink(`${proc}/${pid}/ns/mnt`);
    if (mntNs === undefined || skipped.has(mntNs)) continue;
    const pids = byNamespace.get(mntNs);
    if (pids) pids.push(pid);
    else byNamespace.set(mntNs, [pid]);
  }

  const namespaces: ContainerNamespace[] = [];
  for (const [mntNs, pids] of byNamespace) {
    const kept = representatives.get(mntNs);
    const pid = kept !== undefined && pids.includes(kept) ? kept : electRepresentative(proc, pids);
    if (pid === undefined) {
      representatives.delete(mntNs);
      continue;
    }
    representatives.set(mntNs, pid);
    namespaces.push({ mntNs, pid, pids });
  }
  for (const mntNs of representatives.keys())
    if (!byNamespace.has(mntNs)) representatives.delete(mntNs);
  return namespaces;
}
