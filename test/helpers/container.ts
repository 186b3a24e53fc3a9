// Real "containers" for the agent's tests, built the way runc builds them: a process in its own mount
// and pid namespaces, in memory/cpu/cpuacct/cpuset cgroups (v1) with limits, its own /proc, and lxcfs
// files bind-mounted one by one (private) over /proc and /sys files. The cgroup path has the kubelet's
// cgroupfs layout (kubepods/burstable/pod<uid>/<container id>), so the agent can name pod and container.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** lxcfs needs the same path in all of these: memory for meminfo, cpu (quota) looked up via cpuset's. */
const CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'cpuset'] as const;

export interface ContainerSpec {
  name: string;
  /** memory.limit_in_bytes */
  memoryBytes?: number;
  /** cpu.cfs_quota_us with the default 100000 us period: 50000 = half a CPU. */
  cpuQuotaUs?: number;
  /** Files bound from `source` (default: none, a container without lxcfs). */
  files?: readonly string[];
  readOnlyFiles?: readonly string[];
  /** Directory the files are bound from, e.g. the anchor: `${source}/proc/meminfo`. */
  source?: string;
  /** No shell, no mount binary: pivot_root into a root filesystem holding only a static /init. */
  minimal?: boolean;
  /** The container's init keeps this file open (a process a remount cannot help). */
  holdOpen?: string;
}

export interface ContainerWorld {
  /** Scratch directory for scripts and root filesystems. */
  dir: string;
  /** Parent cgroup (relative to each controller's root) of all containers of a test file. */
  cgroupBase: string;
  /** The static mini-init binary, for minimal containers. */
  miniInit(): Promise<string>;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** How a started container is reached and cleaned up. */
interface ContainerHandles {
  pid: number;
  podUid: string;
  containerId: string;
  cgroupPath: string;
  cgroupBase: string;
  runtime: ChildProcess;
}

export class TestContainer {
  /** The container's init (pid 1 in its pid namespace), as the host sees it. */
  readonly pid: number;
  readonly podUid: string;
  readonly containerId: string;
  private readonly cgroupPath: string;
  /** The test file's cgroup, removed by its owner once every container is gone. */
  private readonly cgroupBase: string;
  private readonly runtime: ChildProcess;

  constructor(
    readonly spec: ContainerSpec,
    handles: ContainerHandles,
  ) {
    ({
      pid: this.pid,
      podUid: this.podUid,
      containerId: this.containerId,
      cgroupPath: this.cgroupPath,
      cgroupBase: this.cgroupBase,
      runtime: this.runtime,
    } = handles);
  }

  /** Runs a command inside (mount + pid namespaces, like kubectl exec), with a timeout. */
  exec(argv: readonly string[], timeoutMs = 5000): Promise<ExecResult> {
    return new Promise((resolve) => {
      execFile(
        'nsenter',
        ['-t', String(this.pid), '-m', '-p', ...argv],
        { timeout: timeoutMs, killSignal: 'SIGKILL' },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  /** Reads a file inside; the minimal image has no cat, only its /init. */
  read(path: string, timeoutMs?: number): Promise<ExecResult> {
    return this.exec(this.spec.minimal ? ['/init', 'cat', path] : ['cat', path], timeoutMs);
  }

  /** Whether every one of `files` reads without an error inside, as the container's processes see them. */
  async readsEvery(files: readonly string[], timeoutMs = 2000): Promise<boolean> {
    if (this.spec.minimal)
      return (await Promise.all(files.map((f) => this.read(f, timeoutMs)))).every(
        (r) => r.code === 0 && r.stderr === '',
      );
    const script = 'for f in "$@"; do cat "$f" > /dev/null || exit 1; done';
    const result = await this.exec(['sh', '-c', script, 'sh', ...files], timeoutMs);
    return result.code === 0 && result.stderr === '';
  }

  mountinfo(): string {
    return readFileSync(`/proc/${this.pid}/mountinfo`, 'utf8');
  }

  async destroy(): Promise<void> {
    if (this.runtime.exitCode === null && this.runtime.signalCode === null) {
      const gone = new Promise((resolve) => this.runtime.once('exit', resolve));
      try {
        process.kill(this.pid, 'SIGKILL'); // the pid namespace dies with its init
      } catch {
        // already gone
      }
      await gone;
    }
    await removeCgroup(this.cgroupPath, this.cgroupBase);
  }
}

function cgroupDir(controller: string, path: string): string {
  return join(CGROUP_ROOT, controller, path);
}

/** Creates `path` in every controller; cpuset levels need cpus and mems before they take a process. */
export function createCgroup(path: string): void {
  for (const controller of CONTROLLERS) {
    let current = '';
    for (const part of path.split('/').filter((p) => p !== '')) {
      const parent = cgroupDir(controller, current);
      current = `${current}/${part}`;
      const dir = cgroupDir(controller, current);
      if (existsSync(dir)) continue;
      mkdirSync(dir);
      if (controller === 'cpuset') {
        for (const file of ['cpuset.cpus', 'cpuset.mems'])
          writeFileSync(join(dir, file), readFileSync(join(parent, file)));
      }
    }
  }
}

/** Removes `path` and its ancestors up to (not including) `stopAt`, as far as no other cgroup is below. */
export async function removeCgroup(path: string, stopAt = ''): Promise<void> {
  for (const controller of CONTROLLERS) {
    for (
      let current = path;
      current !== stopAt && current !== '';
      current = current.slice(0, current.lastIndexOf('/'))
    ) {
      const dir = cgroupDir(controller, current);
      if (!existsSync(dir)) continue;
      if (readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) break; // a sibling's
      // EBUSY while the last task is being reaped
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if (attempt > 250)
            throw new Error(`cannot remove cgroup ${dir}: ${(err as Error).message}`, {
              cause: err,
            });
          await sleep(20);
        }
      }
    }
  }
}

/** Shell commands that move the shell itself into `path` (createCgroup's) in every controller. */
export function joinCgroupsScript(path: string): string {
  return CONTROLLERS.map((c) => `echo $$ > ${sh(join(cgroupDir(c, path), 'cgroup.procs'))}`).join(
    '; ',
  );
}

function sh(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function bindLines(spec: ContainerSpec, rootPrefix: string): string[] {
  return (spec.files ?? []).flatMap((file) => {
    const target = sh(`${rootPrefix}${file}`);
    const lines = [
      `mount --bind ${sh(`${spec.source}${file}`)} ${target}`,
      `mount --make-private ${target}`,
    ];
    if (spec.readOnlyFiles?.includes(file)) lines.push(`mount -o remount,bind,ro ${target}`);
    return lines;
  });
}

function hostRootScript(spec: ContainerSpec, readyFile: string): string {
  return [
    'set -e',
    'mount -t proc proc /proc',
    ...bindLines(spec, ''),
    ...(spec.holdOpen ? [`exec 3< ${sh(spec.holdOpen)}`] : []),
    `echo ready > ${sh(readyFile)}`,
    'exec sleep infinity',
  ].join('\n');
}

function minimalScript(
  spec: ContainerSpec,
  rootfs: string,
  init: string,
  readyFile: string,
): string {
  return [
    'set -e',
    `mkdir -p ${sh(`${rootfs}/proc`)} ${sh(`${rootfs}/sys`)}`,
    `cp ${sh(init)} ${sh(`${rootfs}/init`)}`,
    `mount --bind ${sh(rootfs)} ${sh(rootfs)}`,
    `mount -t proc proc ${sh(`${rootfs}/proc`)}`,
    `mount -t sysfs sysfs ${sh(`${rootfs}/sys`)}`,
    ...bindLines(spec, rootfs),
    `exec ${sh(`${rootfs}/init`)} pivot ${sh(rootfs)} ${sh(readyFile)}`,
  ].join('\n');
}

export async function createContainer(
  world: ContainerWorld,
  spec: ContainerSpec,
): Promise<TestContainer> {
  const podUid = randomUUID();
  const containerId = randomBytes(32).toString('hex');
  const cgroupPath = `${world.cgroupBase}/kubepods/burstable/pod${podUid}/${containerId}`;
  createCgroup(cgroupPath);
  if (spec.memoryBytes !== undefined)
    writeFileSync(
      join(cgroupDir('memory', cgroupPath), 'memory.limit_in_bytes'),
      String(spec.memoryBytes),
    );
  if (spec.cpuQuotaUs !== undefined)
    writeFileSync(join(cgroupDir('cpu', cgroupPath), 'cpu.cfs_quota_us'), String(spec.cpuQuotaUs));

  const readyFile = join(world.dir, `${spec.name}.ready`);
  const script = join(world.dir, `${spec.name}.sh`);
  writeFileSync(
    script,
    spec.minimal
      ? minimalScript(
          spec,
          join(world.dir, `rootfs-${spec.name}`),
          await world.miniInit(),
          readyFile,
        )
      : hostRootScript(spec, readyFile),
  );
  const runtime = spawn(
    'sh',
    [
      '-c',
      `${joinCgroupsScript(cgroupPath)}; exec unshare --mount --pid --fork --propagation private sh ${sh(script)}`,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  runtime.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

  for (
    let waited = 0;
    !existsSync(readyFile) || readFileSync(readyFile, 'utf8') === '';
    waited += 10
  ) {
    if (runtime.exitCode !== null || waited > 10_000) {
      runtime.kill('SIGKILL');
      await removeCgroup(cgroupPath, world.cgroupBase);
      throw new Error(`container ${spec.name} did not start: ${stderr}`);
    }
    await sleep(10);
  }
  const children = readFileSync(`/proc/${runtime.pid}/task/${runtime.pid}/children`, 'utf8').trim();
  return new TestContainer(spec, {
    pid: Number(children.split(' ')[0]),
    podUid,
    containerId,
    cgroupPath,
    cgroupBase: world.cgroupBase,
    runtime,
  });
}
