// Which mount namespaces are the node's to repair: those whose processes share the agent's user
// namespace, the node's (a privileged DaemonSet pod with hostPID never has a user namespace of its own).
// A process that makes a user namespace together with a mount namespace
// (`unshare -Urm` inside a container, any unprivileged workload may) gets a copy of its container's
// mounts, lxcfs files included, that the kernel locks to it: they can be neither swapped nor detached
// from outside (EINVAL, forever), and a container may make thousands of them. They are not containers:
// the agent skips them before reading anything else of them (pods with `hostUsers: false` are never
// injected; rootless and user-namespace-remapped containers are not repaired either).
import { readlinkSync } from 'node:fs';
import type { ContainerNamespace } from './namespaces.js';

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined; // the process exited
  }
}

/** Per mount namespace: its chosen process and that process's user namespace, read once per process. */
export type UserNamespaceCache = Map<
  string,
  { pid: number; startTime: number; userNs: string | undefined }
>;

/**
 * A predicate for one survey: whether a namespace's representative is in the node's user namespace: the
 * agent's own (`self`), else PID 1's (a procfs of a pid namespace the agent is not in). PID 1's alone is
 * not enough: a sandbox or an LSM may deny reading its links (EACCES) even to root. A procfs without
 * user namespace links (older kernels, test fakes) puts everything in the node's.
 */
export function inNodeUserNamespace(
  proc: string,
  cache: UserNamespaceCache,
): (ns: ContainerNamespace) => boolean {
  const node = readLink(`${proc}/self/ns/user`) ?? readLink(`${proc}/1/ns/user`);
  return (ns) => {
    if (node === undefined) return true;
    let known = cache.get(ns.mntNs);
    if (known?.pid !== ns.pid || known.startTime !== ns.startTime) {
      known = {
        pid: ns.pid,
        startTime: ns.startTime,
        userNs: readLink(`${proc}/${ns.pid}/ns/user`),
      };
      cache.set(ns.mntNs, known);
    }
    return known.userNs === node;
  };
}
