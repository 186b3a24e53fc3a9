// lxcfs and cgroup namespaces. lxcfs finds a reader's cgroup in /proc/<pid>/cgroup, which the kernel
// writes relative to the cgroup namespace of the process reading it, here lxcfs. In a private cgroup
// namespace (the default for every podman and docker container on cgroup v2, privileged ones included)
// other containers show up as `0::/../<path>`, lxcfs cannot resolve them and serves the whole node's
// values to everyone, logging nothing (lxc/lxcfs#598). Likewise it opens those paths below its own
// /sys/fs/cgroup, which must be the host's hierarchy, not a cgroup2 mount rooted at the agent's cgroup.
//
// So before lxcfs starts: the agent must see the host's PID namespace (it reaches PID 1's namespaces
// through it), lxcfs is started inside PID 1's cgroup namespace (nsenter --cgroup, which setns()es and
// execs without forking, so the pid the agent supervises is lxcfs itself), and /sys/fs/cgroup must be
// the host's. Whatever cannot be arranged stops the agent with the fix; nothing is left to chance.
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { LxcfsWebhookError } from '../errors.js';

/** How lxcfs has to be started so that it sees the host's cgroup namespace. */
export interface CgroupNamespacePlan {
  /** The agent's own cgroup namespace, e.g. `cgroup:[4026531835]`. */
  own: string;
  /** PID 1's, i.e. the host's. */
  host: string;
  /** Set when `own` differs: the namespace file lxcfs must be started in. */
  enter?: string;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Whether `proc` is the host's procfs: pid 2 is kthreadd only in the initial PID namespace. */
export function seesHostPids(proc: string): boolean {
  try {
    return /^2 \(kthreadd\) /.test(readFileSync(`${proc}/2/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Whether the directory lxcfs will use as the cgroup root is the host's: the same inode as the host's
 * /sys/fs/cgroup seen through PID 1's root. A cgroup2 mount made in a private cgroup namespace is
 * rooted at the container's cgroup, a different kernfs directory with a different inode.
 */
export function sameCgroupRoot(proc: string, viewer: string, ourRoot = CGROUP_ROOT): boolean | undefined {
  try {
    const ours = statSync(viewer === 'self' ? ourRoot : `${proc}/${viewer}/root${CGROUP_ROOT}`);
    const host = statSync(`${proc}/1/root${CGROUP_ROOT}`);
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
  if (!seesHostPids(proc)) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `${proc} is not the host's PID namespace (no kthreadd at pid 2): run the agent with hostPID: true (docker/podman: --pid host); ` +
        'lxcfs must see every container\'s processes and the host\'s cgroup namespace',
    );
  }
  const own = readlinkOrUndefined('/proc/self/ns/cgroup');
  const host = readlinkOrUndefined(`${proc}/1/ns/cgroup`);
  if (own === undefined || host === undefined) {
    // No cgroup namespaces in this kernel (< 4.6): everyone shares the one hierarchy view.
    return { own: own ?? 'none', host: host ?? 'none' };
  }
  if (sameCgroupRoot(proc, 'self') === false) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `${CGROUP_ROOT} in the agent is not the host's cgroup hierarchy (a cgroup2 mount of the agent's own cgroup namespace): ` +
        `mount the host's ${CGROUP_ROOT} into the agent (DaemonSet: hostPath ${CGROUP_ROOT}; docker/podman: -v ${CGROUP_ROOT}:${CGROUP_ROOT}), ` +
        'otherwise lxcfs serves every container the node\'s values',
    );
  }
  if (own === host) return { own, host };
  const enter = `${proc}/1/ns/cgroup`;
  // Try it once now, so a missing nsenter or a refused setns stops the agent at start with the fix
  // instead of failing every lxcfs start later.
  const trial = spawnSync(nsenter, [`--cgroup=${enter}`, '--', 'true'], { encoding: 'utf8', timeout: 10_000 });
  if (trial.error !== undefined || trial.status !== 0) {
    const why = trial.error?.message ?? trial.stderr.trim();
    throw new LxcfsWebhookError(
      'E_AGENT',
      `the agent runs in a private cgroup namespace (${own}, the host's is ${host}) and cannot start lxcfs in the host's ` +
        `(${nsenter} --cgroup=${enter}: ${why}): install util-linux's nsenter in the agent image, ` +
        'or run the agent in the host\'s cgroup namespace (docker/podman: --cgroupns host)',
    );
  }
  return { own, host, enter };
}

/** The executable and arguments that start `bin args` according to `plan`. */
export function wrapForCgroupNamespace(plan: CgroupNamespacePlan | undefined, bin: string, args: readonly string[], nsenter = 'nsenter'): [string, string[]] {
  if (plan?.enter === undefined) return [bin, [...args]];
  return [nsenter, [`--cgroup=${plan.enter}`, '--', bin, ...args]];
}

/** The problem with lxcfs process `pid`'s view of cgroups, or undefined when it sees the host's. */
export function lxcfsCgroupProblem(proc: string, pid: number): string | undefined {
  const theirs = readlinkOrUndefined(`${proc}/${pid}/ns/cgroup`);
  const host = readlinkOrUndefined(`${proc}/1/ns/cgroup`);
  if (theirs !== undefined && host !== undefined && theirs !== host) {
    return (
      `lxcfs (pid ${pid}) runs in cgroup namespace ${theirs}, not the host's ${host}: it serves every container the node's ` +
      'values; restart the agent with a version that enters the host\'s cgroup namespace, or run it with --cgroupns host'
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
