// A stand-in "host" for tests that must show the agent never enters the host's mount namespace: a
// private mount namespace and pid namespace with their own /proc, so a failure lands there and never on
// the real node. Inside it, as on a node:
//   - its init is PID 1 and its mount namespace is "the host's" (`<proc>/1/ns/mnt`);
//   - the agent runs in a mount namespace of its own with the stand-in's pids ("hostPID"), sharing the
//     scratch directory with the host the way the anchor's Bidirectional hostPath does;
//   - containers are children with their own mount and pid namespaces, binding files from the anchor.
// Killing the init ends every process inside, and with them every mount made there.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMountinfo, type Mount } from '../../src/agent/host/mountinfo.js';
import { AgentProcess } from './node.js';
import { cliPath } from './paths.js';

function sh(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The only child of `pid`, once it has one. */
async function childOf(pid: number, timeoutMs = 5000): Promise<number> {
  for (let waited = 0; waited < timeoutMs; waited += 10) {
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      if (children !== '') return Number(children.split(' ')[0]);
    } catch {
      // exited
    }
    await sleep(10);
  }
  throw new Error(`process ${pid} has no child after ${timeoutMs} ms`);
}

/** `pid`'s numbers in each pid namespace it is in, outermost first (NSpid). */
function nsPids(pid: number): number[] {
  const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return nspid!.trim().split(/\s+/).map(Number);
}

async function waitForFile(
  path: string,
  what: string,
  process_: ChildProcess,
  stderr: () => string,
): Promise<void> {
  for (let waited = 0; !existsSync(path) || readFileSync(path, 'utf8') === ''; waited += 10) {
    if (process_.exitCode !== null || waited > 10_000)
      throw new Error(`${what} did not start: ${stderr()}`);
    await sleep(10);
  }
}

export interface StandInContainer {
  /** Its init as the real host sees it (for nsenter and /proc from the test). */
  hostPid: number;
  /** Its init's pid in the stand-in: what the agent sees. */
  pid: number;
  runtime: ChildProcess;
}

/** `sh -c script` in new mount and pid namespaces (and `more` ones), with mounts private to them. */
function shellInNamespaces(script: string, more: readonly string[] = []): string[] {
  return [
    'unshare',
    '--mount',
    '--pid',
    ...more,
    '--fork',
    '--propagation',
    'private',
    'sh',
    '-c',
    script,
  ];
}

/** How the stand-in differs from the plain one (a private mount and pid namespace running `sleep`). */
export interface StandInOptions {
  /** Its own cgroup namespace too, so that no mount made inside can change the node's cgroup2 options. */
  cgroupNamespace?: boolean;
  /** Shell lines run inside before its init starts (mounts of the stand-in's own). */
  setup?: readonly string[];
  /** Its init's command name (`/proc/1/comm`), e.g. `systemd`: `sleep`, run through a link of that name. */
  initName?: string;
}

export class StandInHost {
  private constructor(
    readonly dir: string,
    /** The stand-in's init, as the real host sees it. */
    readonly initPid: number,
    private readonly runtime: ChildProcess,
  ) {}

  /** Starts the stand-in; `dir` (the scratch node's directory) becomes a shared mount inside it. */
  static async start(dir: string, options: StandInOptions = {}): Promise<StandInHost> {
    const ready = join(dir, 'standin.ready');
    const init = options.initName === undefined ? 'sleep' : join(dir, options.initName);
    const script = [
      'set -e',
      'mount -t proc proc /proc',
      // The agent's mounts under the scratch directory reach the stand-in host, as a Bidirectional hostPath's do.
      `mount --bind ${sh(dir)} ${sh(dir)}`,
      `mount --make-shared ${sh(dir)}`,
      ...(options.setup ?? []),
      ...(options.initName === undefined ? [] : [`ln -sf "$(command -v sleep)" ${sh(init)}`]),
      `echo ready > ${sh(ready)}`,
      `exec ${sh(init)} infinity`,
    ].join('\n');
    const argv = shellInNamespaces(script, options.cgroupNamespace ? ['--cgroup'] : []);
    const runtime = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    runtime.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await waitForFile(ready, 'the stand-in host', runtime, () => stderr);
    return new StandInHost(dir, await childOf(runtime.pid!), runtime);
  }

  /** What the real host's `pid` is in the stand-in's pid namespace. */
  pidInside(pid: number): number {
    return nsPids(pid)[nsPids(this.initPid).length - 1]!;
  }

  /** The stand-in's procfs, reached from the real host through its init's root. */
  get proc(): string {
    return `/proc/${this.initPid}/root/proc`;
  }

  /** The stand-in host's mount namespace: `mnt:[...]`. */
  get mntNs(): string {
    return readlinkSync(`/proc/${this.initPid}/ns/mnt`);
  }

  /** The stand-in host's mount table. */
  mounts(): Mount[] {
    return parseMountinfo(readFileSync(`/proc/${this.initPid}/mountinfo`, 'utf8'));
  }

  /** argv run inside the stand-in host: its mount namespace and its pids. */
  inside(argv: readonly string[]): string[] {
    return ['nsenter', '-t', String(this.initPid), '-m', '-p', '--', ...argv];
  }

  /** Runs the agent in a mount namespace of its own inside the stand-in, with the stand-in's /proc. */
  startAgent(args: readonly string[]): AgentProcess {
    const argv = this.inside([
      'unshare',
      '--mount',
      '--propagation',
      'unchanged',
      process.execPath,
      cliPath,
      'agent',
      '--proc',
      '/proc',
      ...args,
    ]);
    return new AgentProcess(
      spawn(argv[0]!, argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LOG_LEVEL: 'debug' },
      }),
    );
  }

  /** A container inside the stand-in: own mount and pid namespaces, its own /proc, `files` bound from `source`. */
  async container(
    name: string,
    source: string,
    files: readonly string[],
  ): Promise<StandInContainer> {
    const ready = join(this.dir, `${name}.ready`);
    const script = [
      'set -e',
      'mount -t proc proc /proc',
      ...files.flatMap((f) => [
        `mount --bind ${sh(`${source}${f}`)} ${sh(f)}`,
        `mount --make-private ${sh(f)}`,
      ]),
      `echo ready > ${sh(ready)}`,
      'exec sleep infinity',
    ].join('\n');
    const argv = this.inside(shellInNamespaces(script));
    const runtime = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    runtime.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await waitForFile(ready, `container ${name}`, runtime, () => stderr);
    // nsenter → unshare (in the stand-in) → the container's init
    const hostPid = await childOf(await childOf(runtime.pid!));
    return { hostPid, pid: this.pidInside(hostPid), runtime };
  }

  /**
   * Starts a process of the stand-in host (its mount namespace) that gets pid `pid` in the stand-in,
   * through the stand-in's own ns_last_pid (the real host's pids are untouched). Other processes inside
   * may take the pid first: retried until it lands.
   */
  async processAtPid(pid: number, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A miss leaves a sleeping process inside the stand-in; it ends with the stand-in.
      const argv = this.inside([
        'sh',
        '-c',
        `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; sleep 600 & echo $!; wait`,
      ]);
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
      const got = await new Promise<number>((resolve) =>
        child
          .stdout!.setEncoding('utf8')
          .once('data', (line: string) => resolve(Number(line.trim()))),
      );
      if (got === pid) return;
      if (Date.now() > deadline)
        throw new Error(`could not start a stand-in host process at pid ${pid} (last got ${got})`);
    }
  }

  /** Ends every process inside, and so every mount namespace made there. */
  async stop(): Promise<void> {
    if (this.runtime.exitCode !== null || this.runtime.signalCode !== null) return;
    const exited = new Promise((resolve) => this.runtime.once('exit', resolve));
    try {
      process.kill(this.initPid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
}

/** A wrapper of the native helper that, for `swap`, writes its arguments to `marker` and waits `seconds` first. */
export function writeSlowHelper(
  path: string,
  helper: string,
  marker: string,
  seconds: number,
): void {
  writeFileSync(
    path,
    `#!/bin/sh\nif [ "$1" = swap ]; then echo "$@" > ${sh(marker)}; sleep ${seconds}; fi\nexec ${sh(helper)} "$@"\n`,
    { mode: 0o755 },
  );
}
