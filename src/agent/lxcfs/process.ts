// Runs one lxcfs process: `lxcfs -f -p <own pidfile> <args> <fuse-mount>` as a child of the agent, its
// output in the agent's structured log, and its known start-up failures turned into one line that says
// what to do.
import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LxcfsWebhookError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { ALLOWED_FILES, POD_LABEL } from '../../config/defaults.js';
import { fuseDevAt, readOwnMounts, visibleMountAt, type Mount } from '../host/mountinfo.js';
import { wrapForCgroupNamespace, type CgroupNamespacePlan } from './cgroup-namespace.js';

export interface LxcfsCommand {
  bin: string;
  args: readonly string[];
  fuseMount: string;
  /** Private to the agent: a second lxcfs on the same pidfile refuses to start. */
  pidfile: string;
  /** Start lxcfs in the host's cgroup namespace (see cgroup-namespace.ts). */
  cgroupNs?: CgroupNamespacePlan;
}

export interface LxcfsExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The fix, when the output shows a known fatal error. */
  fatal?: LxcfsFailure;
}

export interface RunningLxcfs {
  pid: number;
  /** `major:minor` of its FUSE connection. */
  dev: string;
  exited: Promise<LxcfsExit>;
  kill(signal: NodeJS.Signals): void;
}

/** A known fatal error of lxcfs: what to do, and which setting of the command it is about, if one. */
export interface LxcfsFailure {
  fix: string;
  setting?: 'fuseMount' | 'bin';
}

/** Recognises lxcfs' and libfuse's known fatal errors in its output, and names the fix. */
export function explainLxcfsFailure(output: string, fuseMount: string): LxcfsFailure | undefined {
  const locked = /PID file '([^']*)' is already locked/.exec(output);
  if (locked) {
    return {
      fix: `another lxcfs holds the pidfile ${locked[1]}: stop it (pgrep -a lxcfs), or give this agent another FUSE mountpoint (its pidfile sits next to it)`,
      setting: 'fuseMount',
    };
  }
  if (/Transport endpoint is not connected/.test(output)) {
    return {
      fix: `the FUSE mountpoint ${fuseMount} is a dead lxcfs mount: unmount it lazily (umount -l ${fuseMount}) and restart the agent`,
    };
  }
  if (/mountpoint is not empty/.test(output)) {
    return {
      fix: `this lxcfs uses libfuse2, which refuses the non-empty mountpoint ${fuseMount}: install an lxcfs built with fuse3, or empty ${fuseMount}`,
    };
  }
  const badMountPoint = /fuse: bad mount point `[^']*': (.*)/.exec(output);
  if (badMountPoint) {
    return {
      fix: `the FUSE mountpoint ${fuseMount} is unusable (${badMountPoint[1]}): give the agent a directory it can create and mount on`,
      setting: 'fuseMount',
    };
  }
  if (/fuse: device not found|\/dev\/fuse/.test(output)) {
    return {
      fix: 'lxcfs cannot open /dev/fuse: run the agent privileged (securityContext.privileged: true) on a node with the fuse module loaded',
    };
  }
  return undefined;
}

/**
 * lxcfs computes every file it serves from the node's: /proc/meminfo, /proc/stat... and
 * /sys/devices/system/cpu/online, read in its own mount namespace (the agent's). They must be the
 * kernel's. Were one of them an lxcfs file (the agent's pod injected by a webhook, ours or another),
 * lxcfs would serve values computed from a container's view, and from its own file it would read
 * itself and hang every reader. Returns what is wrong, with the fix; undefined when all are the kernel's.
 */
export function kernelFilesProblem(mounts: readonly Mount[]): string | undefined {
  for (const file of ALLOWED_FILES) {
    const kernels = file.startsWith('/proc/') ? 'proc' : 'sysfs';
    const mount = visibleMountAt(mounts, file);
    if (mount?.fsType === kernels) continue;
    const what = mount
      ? `a ${mount.fsType} mount (${mount.source} at ${mount.mountPoint})`
      : 'no mount mountinfo shows';
    return (
      `${file} in the agent's mount namespace is ${what}, not the kernel's ${kernels}: lxcfs computes its files from it ` +
      `and would read itself (and hang) or serve wrong values. Do not inject lxcfs files into the agent's pod ` +
      `(label it ${POD_LABEL}=disabled, or remove the other injector's mounts), and give it the node's /proc and /sys`
    );
  }
  return undefined;
}

/** The executable `bin` names, found like a shell would; undefined when there is none. */
function resolveBinary(bin: string): string | undefined {
  const candidates = bin.includes('/')
    ? [bin]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, bin));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** lxcfs prints a long banner at start; only lines that look like trouble are worth more than debug. */
const TROUBLE = /error|fail|locked|not connected|bad mount|cannot|unable|denied|not empty/i;
const KEPT_OUTPUT_LINES = 50;

/** Starts lxcfs and resolves once its FUSE filesystem is mounted (seen in mountinfo). */
export async function startLxcfs(
  cmd: LxcfsCommand,
  log: Logger,
  timeoutMs: number,
): Promise<RunningLxcfs> {
  const bin = resolveBinary(cmd.bin);
  if (bin === undefined) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `lxcfs binary "${cmd.bin}" not found: install lxcfs (apt-get install lxcfs) or give the agent its path`,
      { setting: 'bin' },
    );
  }
  const notKernels = kernelFilesProblem(readOwnMounts());
  if (notKernels !== undefined)
    throw new LxcfsWebhookError('E_AGENT', `lxcfs not started: ${notKernels}`);
  const child = spawn(
    ...wrapForCgroupNamespace(cmd.cgroupNs, bin, [
      '-f',
      '-p',
      cmd.pidfile,
      ...cmd.args,
      cmd.fuseMount,
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid!;
  const recentOutput: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines.filter((l) => l.trim() !== '')) {
        recentOutput.push(line);
        if (recentOutput.length > KEPT_OUTPUT_LINES) recentOutput.shift();
        log[TROUBLE.test(line) ? 'warn' : 'debug']({ source: 'lxcfs', lxcfsPid: pid }, line);
      }
    });
  }
  const exited = new Promise<LxcfsExit>((resolve) => {
    child.on('close', (code, signal) => {
      const fatal = explainLxcfsFailure(recentOutput.join('\n'), cmd.fuseMount);
      resolve(fatal === undefined ? { code, signal } : { code, signal, fatal });
    });
  });
  const kill = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };

  let exit: LxcfsExit | undefined;
  void exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit) {
      const why =
        exit.fatal?.fix ??
        `lxcfs exited (${exit.signal ?? `code ${exit.code}`}) before mounting: ${recentOutput.slice(-3).join(' | ')}`;
      throw new LxcfsWebhookError('E_AGENT', why, { setting: exit.fatal?.setting });
    }
    const dev = fuseDevAt(readOwnMounts(), cmd.fuseMount);
    if (dev !== undefined) return { pid, dev, exited, kill };
    await sleep(20);
  }
  kill('SIGKILL');
  await exited;
  throw new LxcfsWebhookError(
    'E_AGENT',
    `lxcfs did not mount ${cmd.fuseMount} within ${timeoutMs} ms: see its output above`,
  );
}

/**
 * lxcfs processes serving `fuseMount` (while the agent has no lxcfs child: ones left behind by an agent
 * that was killed). Found by command line, not pidfile: a second lxcfs that fails on a locked pidfile
 * deletes it.
 */
export function findLxcfsServing(proc: string, fuseMount: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`${proc}/${name}/cmdline`, 'utf8')
        .split('\0')
        .filter((a) => a !== '');
      if (basename(argv[0] ?? '').startsWith('lxcfs') && argv.at(-1) === fuseMount)
        pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** SIGKILLs processes that are not our children and waits until they are gone (or zombies). */
export async function killAndWait(
  proc: string,
  pids: readonly number[],
  timeoutMs: number,
): Promise<void> {
  const alive = (pid: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`${proc}/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline)
      throw new LxcfsWebhookError(
        'E_AGENT',
        `lxcfs processes ${pids.join(', ')} survive SIGKILL: check them with ps`,
      );
    await sleep(20);
  }
}
