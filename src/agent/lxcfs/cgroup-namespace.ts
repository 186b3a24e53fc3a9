// lxcfs and cgroup namespaces. lxcfs finds a reader's cgroup in /proc/<pid>/cgroup, which the kernel
// writes relative to the cgroup namespace of the process reading it, here lxcfs. In a private cgroup
// namespace (the default for every podman and docker container on cgroup v2, privileged ones included)
// other containers show up as `0::/../<path>`, lxcfs cannot resolve them and serves the whole node's
// values to everyone, logging nothing (lxc/lxcfs#598). Likewise it opens those paths below its own
// /sys/fs/cgroup, which must be the host's hierarchy, not a cgroup2 mount rooted at the agent's cgroup.
//
// So before lxcfs starts: the agent must see the node's PID namespace (it reaches PID 1's namespaces
// through it), lxcfs is started inside PID 1's cgroup namespace (nsenter --cgroup, which setns()es and
// execs without forking, so the pid the agent supervises is lxcfs itself), and /sys/fs/cgroup must be
// the node's. Whatever cannot be arranged stops the agent with the fix, and what cannot be verified is
// logged as a warning; nothing is left silent.
//
// PID 1 is the reference, not kthreadd: on a nested node (kind: the node is itself a container) PID 1 is
// the node's init and its cgroup namespace is the one the kubelet and runtime use. Where PID 1's
// namespaces cannot be read (some sandboxes forbid it even to root) kthreadd's are used: kernel threads
// always live in the initial namespaces.
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { LxcfsWebhookError } from '../../errors.js';

/** How lxcfs has to be started so that it sees the host's cgroup namespace. */
export interface CgroupNamespacePlan {
  /** The agent's own cgroup namespace, e.g. `cgroup:[4026531835]`. */
  own: string;
  /** PID 1's, i.e. the host's. */
  host: string;
  /** Set when `own` differs: the namespace file lxcfs must be started in. */
  enter?: string;
  /** What could not be verified; the agent logs each. */
  warnings: string[];
}

const CGROUP_ROOT = '/sys/fs/cgroup';

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Whether `proc` is the initial PID namespace's procfs: pid 2 is kthreadd only there. */
export function seesHostPids(proc: string): boolean {
  try {
    return /^2 \(kthreadd\) /.test(readFileSync(`${proc}/2/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The process whose cgroup namespace is the node's: PID 1, or kthreadd where PID 1 cannot be read. */
export function referencePid(proc: string): 1 | 2 | undefined {
  if (readlinkOrUndefined(`${proc}/1/ns/cgroup`) !== undefined) return 1;
  if (seesHostPids(proc) && readlinkOrUndefined(`${proc}/2/ns/cgroup`) !== undefined) return 2;
  return undefined;
}

/**
 * Whether the directory lxcfs will use as the cgroup root is the host's: the same inode as the host's
 * /sys/fs/cgroup seen through PID 1's root. A cgroup2 mount made in a private cgroup namespace is
 * rooted at the container's cgroup, a different kernfs directory with a different inode.
 */
export function sameCgroupRoot(
  proc: string,
  viewer: string,
  ourRoot = CGROUP_ROOT,
): boolean | undefined {
  const reference = referencePid(proc);
  if (reference === undefined) return undefined;
  try {
    const ours = statSync(viewer === 'self' ? ourRoot : `${proc}/${viewer}/root${CGROUP_ROOT}`);
    const host = statSync(`${proc}/${reference}/root${CGROUP_ROOT}`);
    return ours.dev === host.dev && ours.ino === host.ino;
  } catch {
    return undefined;
  }
}

/**
 * Works out how to start lxcfs so it sees the host's cgroups, or throws with the fix. `nsenter` is the
 * util-linux binary the agent image ships.
 */
export function planCgroupNamespace(proc: string, nsenter = 'nsenter'): CgroupNamespacePlan {
  const warnings: string[] = [];
  if (!seesHostPids(proc)) {
    // No kthreadd: either the agent lacks the host's PID namespace, and PID 1 is its own container's
    // init (sharing its mount namespace), or the node is itself a container (kind) whose init PID 1 is.
    const ownMnt = readlinkOrUndefined('/proc/self/ns/mnt');
    if (ownMnt !== undefined && ownMnt === readlinkOrUndefined(`${proc}/1/ns/mnt`)) {
      throw new LxcfsWebhookError(
        'E_AGENT',
        `${proc} is not the node's PID namespace (PID 1 is in the agent's own container): run the agent with hostPID: true ` +
          "(docker/podman: --pid host); lxcfs must see every container's processes and the node's cgroup namespace",
      );
    }
    warnings.push(
      `${proc} shows no kthreadd at pid 2: taking PID 1 (${readlinkOrUndefined(`${proc}/1/exe`) ?? '?'}) as the node's init, as on a nested node (kind)`,
    );
  }
  const own = readlinkOrUndefined('/proc/self/ns/cgroup');
  const reference = referencePid(proc);
  const host =
    reference === undefined ? undefined : readlinkOrUndefined(`${proc}/${reference}/ns/cgroup`);
  if (own === undefined) return { own: 'none', host: host ?? 'none', warnings }; // no cgroup namespaces (Linux < 4.6)
  if (host === undefined) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `cannot read ${proc}/1/ns/cgroup (nor kthreadd's): the agent cannot tell whether lxcfs would see the node's cgroups; ` +
        'run it privileged with hostPID: true (docker/podman: --privileged --pid host)',
    );
  }
  if (sameCgroupRoot(proc, 'self') === false) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `${CGROUP_ROOT} in the agent is not the host's cgroup hierarchy (a cgroup2 mount of the agent's own cgroup namespace): ` +
        `mount the host's ${CGROUP_ROOT} into the agent (DaemonSet: hostPath ${CGROUP_ROOT}; docker/podman: -v ${CGROUP_ROOT}:${CGROUP_ROOT}), ` +
        "otherwise lxcfs serves every container the node's values",
    );
  }
  if (own === host) return { own, host, warnings };
  const enter = `${proc}/${reference}/ns/cgroup`;
  // Try it once now, so a missing nsenter or a refused setns stops the agent at start with the fix
  // instead of failing every lxcfs start later.
  const trial = spawnSync(nsenter, [`--cgroup=${enter}`, '--', 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (trial.error !== undefined || trial.status !== 0) {
    const why = trial.error?.message ?? trial.stderr.trim();
    throw new LxcfsWebhookError(
      'E_AGENT',
      `the agent runs in a private cgroup namespace (${own}, the host's is ${host}) and cannot start lxcfs in the host's ` +
        `(${nsenter} --cgroup=${enter}: ${why}): install util-linux's nsenter in the agent image, ` +
        "or run the agent in the host's cgroup namespace (docker/podman: --cgroupns host)",
    );
  }
  return { own, host, enter, warnings };
}

/** The executable and arguments that start `bin args` according to `plan`. */
export function wrapForCgroupNamespace(
  plan: CgroupNamespacePlan | undefined,
  bin: string,
  args: readonly string[],
  nsenter = 'nsenter',
): [string, string[]] {
  if (plan?.enter === undefined) return [bin, [...args]];
  return [nsenter, [`--cgroup=${plan.enter}`, '--', bin, ...args]];
}

/** The problem with lxcfs process `pid`'s view of cgroups, or undefined when it sees the host's. */
export function lxcfsCgroupProblem(proc: string, pid: number): string | undefined {
  const theirs = readlinkOrUndefined(`${proc}/${pid}/ns/cgroup`);
  const reference = referencePid(proc);
  const host =
    reference === undefined ? undefined : readlinkOrUndefined(`${proc}/${reference}/ns/cgroup`);
  if (theirs !== undefined && host !== undefined && theirs !== host) {
    return (
      `lxcfs (pid ${pid}) runs in cgroup namespace ${theirs}, not the host's ${host}: it serves every container the node's ` +
      "values; restart the agent with a version that enters the host's cgroup namespace, or run it with --cgroupns host"
    );
  }
  if (sameCgroupRoot(proc, String(pid)) === false) {
    return (
      `lxcfs (pid ${pid}) does not see the host's ${CGROUP_ROOT}: it serves every container the node's values; ` +
      `mount the host's ${CGROUP_ROOT} into the agent (hostPath ${CGROUP_ROOT}, or -v ${CGROUP_ROOT}:${CGROUP_ROOT})`
    );
  }
  return undefined;
}
