// A scratch "node" for one agent test file: a unique temp directory (anchor, FUSE mountpoint, foreign
// lxcfs), a cgroup subtree, the containers and agent processes of the test, and a cleanup that removes
// all of it (processes, mounts, cgroups, files) whether the test passed or not. Never touches the real
// /var/lib/lxcfs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import {
  bindIntoAnchor,
  clearLxcfsMounts,
  prepareAnchor,
  type AnchorLayout,
} from '../../src/agent/lxcfs/anchor.js';
import {
  findLxcfsServing,
  killAndWait,
  startLxcfs,
  type RunningLxcfs,
} from '../../src/agent/lxcfs/process.js';
import { readStartTime, type ChosenProcess } from '../../src/agent/host/chosen-process.js';
import { mountsAtOrBelow, parseMountinfo } from '../../src/agent/host/mountinfo.js';
import type { TestContext } from 'node:test';
import {
  AGENT_NODE_FLAGS,
  AGENT_STATE_DIR,
  AGENT_STATE_FILE,
  DEFAULT_FILES,
} from '../../src/config/defaults.js';
import {
  createCgroup,
  createContainer,
  joinCgroupsScript,
  removeCgroup,
  type ContainerSpec,
  type TestContainer,
} from './container.js';
import { cliPath, repoRoot } from './paths.js';
import { collectLogLines, type LogLine } from './log-lines.js';
import { waitUntil } from './wait.js';

export const helperPath = join(repoRoot, 'native', 'build', 'lxcfs-remount');
const helpersDir = join(repoRoot, 'test', 'helpers');

/** `pid` named as the agent's survey names the process it chooses for a namespace. */
export function chosenProcess(pid: number, proc = '/proc'): ChosenProcess {
  return {
    mntNs: readlinkSync(`${proc}/${pid}/ns/mnt`),
    pid,
    startTime: readStartTime(proc, pid)!,
  };
}

/** A memory limit and CPU quota every test container gets unless told otherwise: 256 MiB, half a CPU. */
export const LIMITS = { memoryBytes: 256 * 1024 * 1024, cpuQuotaUs: 50_000 } as const;
/** What a container with those limits reads through lxcfs. */
export const EXPECTED_MEMTOTAL = 'MemTotal:         262144 kB';

/** The agent as a real process (`lxcfs-webhook agent`), with its JSON log collected. */
export class AgentProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  port = 0;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    collectLogLines(child.stdout!, this.logs);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for a log line matching `match`, seen after `since` lines. */
  async waitForLog(
    match: (line: LogLine) => boolean,
    timeoutMs = 15_000,
    since = 0,
  ): Promise<LogLine> {
    return waitUntil('a matching agent log line', () => this.logs.slice(since).find(match), {
      timeoutMs,
      intervalMs: 20,
      abandon: () => (this.running ? undefined : `the agent exited; stderr: ${this.stderr}`),
    }).catch((err: Error) => {
      throw new Error(`${err.message}; last lines: ${JSON.stringify(this.logs.slice(-5))}`, {
        cause: err,
      });
    });
  }

  async get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`);
    return { status: res.status, body: await res.text() };
  }

  async waitReady(timeoutMs = 15_000): Promise<void> {
    let last = '';
    await waitUntil(
      'the agent ready',
      async () => {
        const ready = await this.get('/readyz');
        last = ready.body;
        return ready.status === 200;
      },
      {
        timeoutMs,
        abandon: () => (this.running ? undefined : `it exited; stderr: ${this.stderr}`),
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; /readyz said: ${last}`, { cause: err });
    });
  }

  /** The sum of a metric's samples whose labels contain `labels` (e.g. 'result="done"'). */
  async metric(name: string, labels = ''): Promise<number> {
    const { body } = await this.get('/metrics');
    return body
      .split('\n')
      .filter(
        (line) =>
          line.startsWith(`${name} `) || (line.startsWith(`${name}{`) && line.includes(labels)),
      )
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }
}

export interface ForeignLxcfs {
  /** Where it is mounted: bind files from here (`${mount}/proc/meminfo`). */
  mount: string;
  process: ChildProcess;
}

export interface AgentSpawnOptions {
  /** debug unless told: tests read the sweeps' log lines. */
  logLevel?: string;
  /** Node flags; the image's (AGENT_NODE_FLAGS) unless told. */
  nodeFlags?: readonly string[];
  /**
   * Run the agent (and so lxcfs and its helpers) in a cgroup of its own, as in its pod, instead of the
   * test's: what lxcfs does for the agent's reads (its loadavg rescans) then costs what it does on a node.
   */
  ownCgroup?: boolean;
}

/**
 * Node 20's V8 (not the image's Node 24) warns on stderr at start that lite mode turns WebAssembly off,
 * unless told so itself; Node 24 knows no --no-expose-wasm. Tests read the agent's stderr line by line.
 */
function forThisNode(flags: readonly string[]): readonly string[] {
  return flags.includes('--lite-mode') && process.versions.node.startsWith('20.')
    ? [...flags, '--no-expose-wasm']
    : flags;
}

export class TestNode {
  readonly dir: string;
  readonly anchor: string;
  readonly fuseMount: string;
  readonly cgroupBase: string;
  private readonly containers: TestContainer[] = [];
  private readonly agents: AgentProcess[] = [];
  private readonly foreign: ForeignLxcfs[] = [];
  private readonly staticTools = new Map<string, Promise<string>>();
  /** The node binary agents run with: this process's unless useOwnNodeBinary() was called. */
  private agentNode = process.execPath;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-test-'));
    this.anchor = join(this.dir, 'anchor');
    this.fuseMount = join(this.dir, 'run', 'fuse');
    this.cgroupBase = `/${basename(this.dir)}`;
  }

  /**
   * Agents started from now on run a copy of this process's node binary that no other process maps, as
   * the agent does in its pod (its image's own file): the code pages it pages out are then its own. With
   * the binary every Node.js process on this machine shares, the kernel keeps those pages where they are.
   */
  useOwnNodeBinary(): void {
    this.agentNode = join(this.dir, 'node');
    copyFileSync(process.execPath, this.agentNode);
  }

  /** The static init of minimal containers, compiled once per node. */
  miniInit(): Promise<string> {
    return this.staticTool('mini-init');
  }

  /** test/helpers/<name>.c as a static binary (it runs inside minimal containers), compiled once per node. */
  staticTool(name: string): Promise<string> {
    const out = join(this.dir, name);
    let built = this.staticTools.get(name);
    if (!built) {
      const source = join(helpersDir, `${name}.c`);
      built = promisify(execFile)('cc', ['-static', '-O2', '-o', out, source]).then(() => out);
      this.staticTools.set(name, built);
    }
    return built;
  }

  async container(spec: ContainerSpec): Promise<TestContainer> {
    const container = await createContainer(this, { source: this.anchor, ...spec });
    this.containers.push(container);
    return container;
  }

  /** Starts `lxcfs-webhook agent` on this node with short intervals; resolves once it listens. */
  async startAgent(
    extraArgs: readonly string[] = [],
    options: AgentSpawnOptions = {},
  ): Promise<AgentProcess> {
    const agent = this.spawnAgent(extraArgs, options);
    const starting = await agent.waitForLog((l) => l.msg === 'agent starting');
    agent.port = Number(starting.healthPort);
    return agent;
  }

  /** The flags that point a command (`agent`, `check`) at this node's paths. */
  get pathFlags(): string[] {
    return [
      '--lxcfs-root',
      this.anchor,
      '--fuse-mount',
      this.fuseMount,
      '--remount-helper',
      helperPath,
    ];
  }

  /**
   * Runs `lxcfs-webhook agent` on this node with short intervals (`extraArgs` come last and win), with
   * the Node flags of the agent's image unless told otherwise.
   */
  spawnAgent(
    extraArgs: readonly string[] = [],
    { logLevel = 'debug', nodeFlags = AGENT_NODE_FLAGS, ownCgroup = false }: AgentSpawnOptions = {},
  ): AgentProcess {
    const args = [
      this.agentNode,
      ...forThisNode(nodeFlags),
      cliPath,
      'agent',
      ...this.pathFlags,
      '--health-port',
      '0',
      '--sweep-interval',
      '1s',
      '--probe-interval',
      '250ms',
      '--probe-timeout',
      '500ms',
      '--hang-grace',
      '1500ms',
      ...extraArgs,
    ];
    if (ownCgroup) createCgroup(this.agentCgroup);
    const [command, ...argv] = ownCgroup
      ? ['sh', '-c', `${joinCgroupsScript(this.agentCgroup)}; exec "$@"`, 'sh', ...args]
      : args;
    const agent = new AgentProcess(
      spawn(command!, argv, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LOG_LEVEL: logLevel },
      }),
    );
    this.agents.push(agent);
    return agent;
  }

  /** Another lxcfs on the node, not the agent's: its mounts must be left alone. */
  async startForeignLxcfs(): Promise<ForeignLxcfs> {
    const mount = join(this.dir, 'foreign');
    rmSync(mount, { recursive: true, force: true });
    await promisify(execFile)('mkdir', ['-p', mount]);
    const process_ = spawn('lxcfs', ['-f', '-p', join(this.dir, 'foreign.pid'), mount], {
      stdio: 'ignore',
    });
    const foreign = { mount, process: process_ };
    this.foreign.push(foreign);
    await waitUntil(
      'the foreign lxcfs mounted',
      () => this.ownMounts().some((m) => m.mountPoint === mount),
      {
        timeoutMs: 5000,
        intervalMs: 20,
      },
    );
    return foreign;
  }

  /** The agents' own cgroup (AgentSpawnOptions.ownCgroup). */
  get agentCgroup(): string {
    return `${this.cgroupBase}/agent`;
  }

  get layout(): AnchorLayout {
    return { root: this.anchor, fuseMount: this.fuseMount, helper: helperPath };
  }

  /** For tests of single modules: the anchor and lxcfs set up as the agent does, without the agent. */
  async lxcfsWithAnchor(): Promise<RunningLxcfs> {
    const log = pino({ level: 'silent' });
    await prepareAnchor(this.layout, log);
    await clearLxcfsMounts(this.layout, log);
    const lxcfs = await startLxcfs(
      {
        bin: 'lxcfs',
        args: ['--enable-cfs'],
        fuseMount: this.fuseMount,
        pidfile: join(this.dir, 'run', 'lxcfs.pid'),
      },
      log,
      5000,
    );
    await bindIntoAnchor(this.layout);
    return lxcfs;
  }

  /** The lxcfs the agent runs now. */
  lxcfsPid(): number {
    const pids = findLxcfsServing('/proc', this.fuseMount);
    if (pids.length !== 1)
      throw new Error(`expected one lxcfs on ${this.fuseMount}, found ${pids.length}`);
    return pids[0]!;
  }

  ownMounts() {
    return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  }

  async cleanup(): Promise<void> {
    for (const agent of this.agents) {
      agent.kill('SIGKILL');
      await agent.exited;
    }
    for (const f of this.foreign) f.process.kill('SIGKILL');
    await killAndWait(
      '/proc',
      [...findLxcfsServing('/proc', this.fuseMount), ...this.foreign.map((f) => f.process.pid!)],
      5000,
    );
    for (const container of this.containers) await container.destroy();
    await removeCgroup(this.agentCgroup, this.cgroupBase);
    await removeCgroup(this.cgroupBase);
    for (let pass = 0; pass < 20; pass++) {
      const mounts = mountsAtOrBelow(this.ownMounts(), this.dir);
      if (mounts.length === 0) break;
      for (const m of mounts)
        await promisify(execFile)(helperPath, ['detach', m.mountPoint]).catch(() => undefined);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- shared by the agent's end-to-end and fault tests ----------------------------------------------

export function scratchNode(t: TestContext): TestNode {
  const node = new TestNode();
  t.after(() => node.cleanup());
  return node;
}

export async function startReadyAgent(
  node: TestNode,
  extraArgs: readonly string[] = [],
): Promise<AgentProcess> {
  const agent = await node.startAgent(extraArgs);
  await agent.waitReady();
  return agent;
}

/** Reads the container's limits through lxcfs: 256 MiB, half a CPU. */
export async function readsLimits(c: TestContainer): Promise<boolean> {
  const [meminfo, online] = await Promise.all([
    c.read('/proc/meminfo', 2000),
    c.read('/sys/devices/system/cpu/online', 2000),
  ]);
  return meminfo.stdout.includes(EXPECTED_MEMTOTAL) && online.stdout === '0\n';
}

/**
 * Waits until the agent's state file remembers every file of the container as injected. Only then is a
 * file that disappears "missing" to the agent: a sweep that ran while the container was still being set
 * up saw only some of its files, and one unmounted before the next sweep was never seen.
 */
export async function waitRemembered(node: TestNode, c: TestContainer): Promise<void> {
  const mntNs = readlinkSync(`/proc/${c.pid}/ns/mnt`);
  await waitUntil(
    'the agent remembers every file of the container',
    () => {
      try {
        const state = JSON.parse(
          readFileSync(join(node.anchor, AGENT_STATE_DIR, AGENT_STATE_FILE), 'utf8'),
        ) as {
          namespaces?: Record<string, { targets?: Record<string, unknown> }>;
        };
        const targets = state.namespaces?.[mntNs]?.targets ?? {};
        return (c.spec.files ?? []).every((file) => file in targets);
      } catch {
        return false; // not written yet, or being replaced
      }
    },
    { timeoutMs: 10_000 },
  );
}

/** 20 s, so a slow CI machine passes and a remount that keeps failing does not. */
export async function waitAllHealthy(containers: TestContainer[]): Promise<void> {
  await waitUntil(
    'every container reads its limits',
    async () => (await Promise.all(containers.map(readsLimits))).every(Boolean),
    { timeoutMs: 20_000 },
  );
}

/** The mounts at the container's injected targets, as (mountpoint, stacked count) pairs. */
export function targetDepths(c: TestContainer): Record<string, number> {
  const depths: Record<string, number> = {};
  for (const line of c.mountinfo().split('\n')) {
    const target = line.split(' ')[4];
    if (target && DEFAULT_FILES.includes(target as never))
      depths[target] = (depths[target] ?? 0) + 1;
  }
  return depths;
}

export const withLxcfs = { ...LIMITS, files: DEFAULT_FILES };

export /** `ok` or the errno of a stat(); never blocks long, since lxcfs is dead, not hung, when it is used. */
function statOutcome(path: string): string {
  try {
    statSync(path);
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
