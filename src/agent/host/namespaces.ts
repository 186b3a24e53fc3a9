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

export function listContainerNamespaces(proc: string): ContainerNamespace[] {
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
    const oldestFirst = pids.length === 1 ? pids : [...pids].sort((a, b) => startTime(proc, a) - startTime(proc, b));
    const pid = oldestFirst.find((p) => {
      const pidNs = readLink(`${proc}/${p}/ns/pid`);
      return pidNs !== undefined && pidNs === readLink(`${proc}/${p}/ns/pid_for_children`);
    });
    if (pid !== undefined) namespaces.push({ mntNs, pid, pids });
  }
  return namespaces;
}
