// What the agent knows about lxcfs releases, from lxcfs' source (src/lxcfs.c's options at each tag) and
// runs on cgroup v2 guests (README, "Which lxcfs"): the version decides the flags lxcfs is started with
// and which of an operator's flags it would reject. The decisions are pure; only readLxcfsVersion runs
// anything (`lxcfs --version`, which prints and exits).
import { spawnSync } from 'node:child_process';

export interface LxcfsVersion {
  major: number;
  minor: number;
  patch: number;
  /** As lxcfs printed it, e.g. `6.0.4`. */
  text: string;
}

/** The version in `lxcfs --version`'s output (`"7.0.0"`, quotes included, on stderr). */
export function parseLxcfsVersion(output: string): LxcfsVersion | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(output);
  if (!m) return undefined;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    text: `${m[1]}.${m[2]}.${m[3]}`,
  };
}

/** Whether `v` is at least `major.minor.patch`. */
export function atLeast(v: LxcfsVersion, major: number, minor = 0, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

/**
 * Started in the node's cgroup namespace, lxcfs up to 6.0.5 mounts a cgroup2 of its own with no options,
 * and the kernel applies those to the node's one cgroup2: `nsdelegate` and `memory_recursiveprot` are
 * cleared for the whole node (lxc/lxcfs#681, fixed in 6.0.6 and 7.0.0).
 */
export function resetsCgroupOptions(v: LxcfsVersion): boolean {
  return !atLeast(v, 6, 0, 6);
}

/**
 * lxcfs 7.0 dropped cgroup v1 and hybrid layouts. On such a node it does not exit: it fails to set up its
 * cgroup driver, mounts anyway and serves every container the node's own files (seen with 7.0.0 on a
 * hybrid host), so the agent must refuse it there.
 */
export function supportsCgroupV1(v: LxcfsVersion): boolean {
  return !atLeast(v, 7);
}

/**
 * The flags the agent starts lxcfs with unless `--lxcfs-args` says otherwise:
 * - `--enable-cfs`: cpuinfo, `cpu/online` (and from 6.0.6 the cpuN lines of stat) follow the CPU quota;
 * - `--enable-pidfd` on 4.0 up to 6.x: lxcfs tracks the pid namespaces it caches by pidfd, so a reused
 *   PID cannot make it answer from another container's cgroup; 7.0 does that by default and only logs
 *   that the flag is deprecated, older releases do not know it;
 * - `-l` (`loadavg`): a per-container /proc/loadavg. It costs a thread that every 5 s reads
 *   `cgroup.procs` and every task's status file of every container that ever read /proc/loadavg; off,
 *   lxcfs serves the node's loadavg.
 * An unknown version gets no `--enable-pidfd`: every other flag here is accepted by every release.
 */
export function defaultLxcfsArgs(
  version: LxcfsVersion | undefined,
  { loadavg }: { loadavg: boolean },
): string[] {
  const pidfd = version !== undefined && atLeast(version, 4) && !atLeast(version, 7);
  return ['--enable-cfs', ...(pidfd ? ['--enable-pidfd'] : []), ...(loadavg ? ['-l'] : [])];
}

/**
 * lxcfs options that only some releases accept: any other release prints its usage and exits, so the
 * agent would restart it forever. Only what changed since 4.0 is listed.
 */
const VERSIONED_FLAGS: ReadonlyArray<{
  flag: string;
  from?: [number, number, number];
  before?: [number, number, number];
  note: string;
}> = [
  {
    flag: '--enable-cgroup',
    from: [6, 0, 0],
    before: [7, 0, 0],
    note: 'the cgroupfs view of 6.0.x; 7.0 supports cgroup v2 only and dropped it',
  },
  { flag: '--runtime-dir', from: [6, 0, 1], note: 'new in 6.0.1' },
  { flag: '--enable-psi-poll', from: [7, 0, 0], note: 'new in 7.0.0' },
  { flag: '--disable-zswap', from: [7, 0, 0], note: 'new in 7.0.0' },
  { flag: '--enable-pidfd', from: [4, 0, 0], note: 'new in 4.0.0' },
];

/** One line per flag in `args` that lxcfs `version` rejects (it would exit at start), with the fix. */
export function rejectedLxcfsArgs(version: LxcfsVersion, args: readonly string[]): string[] {
  const problems: string[] = [];
  for (const arg of args) {
    const name = arg.split('=')[0]!;
    const known = VERSIONED_FLAGS.find((f) => f.flag === name);
    if (known === undefined) continue;
    const tooOld = known.from !== undefined && !atLeast(version, ...known.from);
    const tooNew = known.before !== undefined && atLeast(version, ...known.before);
    if (tooOld || tooNew)
      problems.push(
        `lxcfs ${version.text} rejects ${name} (${known.note}) and would exit at once: remove it`,
      );
  }
  return problems;
}

/** `lxcfs --version`, bounded; undefined when it cannot be run or prints no version. */
export function readLxcfsVersion(bin: string, timeoutMs: number): LxcfsVersion | undefined {
  const result = spawnSync(bin, ['--version'], {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.error !== undefined || result.status !== 0) return undefined;
  return parseLxcfsVersion(`${result.stdout}\n${result.stderr}`);
}
