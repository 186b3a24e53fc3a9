// Finds every mount namespace on the node other than the host's and the agent's own, by the
// /proc/<pid>/ns/mnt links of all processes (the agent runs with hostPID). Reads only procfs, which
// never waits on FUSE, with synchronous calls: they are fast and keep a sweep's view consistent.
import { readdirSync, readlinkSync } from 'node:fs';
import { forbiddenNamespaces, readStartTime, type ChosenProcess } from './chosen-process.js';

/**
 * A container's mount namespace (`mntNs`, e.g. `mnt:[4026532301]`) and the process chosen to stand for
 * it (`pid`, `startTime`): the oldest process whose pid namespace is also the one its children get. Its
 * root and mountinfo are the container's (not those of a runtime process halfway through unshare()), and
 * it lives as long as the container (its init), unlike an exec probe or `kubectl exec` that may be gone
 * by the remount. The helper acts only on that process (see chosen-process.ts).
 */
export interface ContainerNamespace extends ChosenProcess {
  /** Every process in the namespace, for finding descriptors opened on dead files. */
  pids: number[];
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined; // the process exited, or is a zombie
  }
}

/** The oldest process whose pid namespace is also its children's; undefined when none is (yet). */
function electRepresentative(
  proc: string,
  mntNs: string,
  pids: readonly number[],
): ChosenProcess | undefined {
  const started = new Map(pids.map((p) => [p, readStartTime(proc, p) ?? Infinity]));
  const oldestFirst =
    pids.length === 1 ? pids : [...pids].sort((a, b) => started.get(a)! - started.get(b)!);
  const pid = oldestFirst.find((p) => {
    const pidNs = readLink(`${proc}/${p}/ns/pid`);
    return pidNs !== undefined && pidNs === readLink(`${proc}/${p}/ns/pid_for_children`);
  });
  const startTime = pid === undefined ? Infinity : started.get(pid)!;
  return pid === undefined || startTime === Infinity ? undefined : { mntNs, pid, startTime };
}

/**
 * `representatives` carries each namespace's representative from one call to the next: it is kept
 * while it is still in the namespace (a process that joined since is younger, so the election would
 * not change), and only new namespaces and vanished representatives pay for the election's reads. A
 * kept pid taken over by another process of the same namespace is caught by the helper (its start
 * time differs); the caller then forgets it, and the next call elects again.
 */
export function listContainerNamespaces(
  proc: string,
  representatives: Map<string, ChosenProcess> = new Map(),
): ContainerNamespace[] {
  const skipped = forbiddenNamespaces(proc).whose;
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
    const chosen =
      kept !== undefined && pids.includes(kept.pid) ? kept : electRepresentative(proc, mntNs, pids);
    if (chosen === undefined) {
      representatives.delete(mntNs);
      continue;
    }
    representatives.set(mntNs, chosen);
    namespaces.push({ mntNs, pid: chosen.pid, startTime: chosen.startTime, pids });
  }
  for (const mntNs of representatives.keys())
    if (!byNamespace.has(mntNs)) representatives.delete(mntNs);
  return namespaces;
}
