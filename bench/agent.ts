// Benchmark of `lxcfs-webhook agent` on a node with 200 and then 1,000 containers × 8 lxcfs files: the
// real agent process, real lxcfs, real containers (mount + pid namespaces, memory/cpu cgroups; see
// test/helpers/container.ts). Needs root, lxcfs and fuse3, like the agent's tests. For each size, once
// with mount notifications and once without (--mount-notifications=false, the fallback):
//   1. idle sweep: CPU time the agent spends in one periodic sweep when nothing is broken (its
//      lxcfs_webhook_agent_last_sweep_cpu_seconds), median over several sweeps. That metric cannot see
//      the mount watcher (a child process), so the watcher's CPU and the agent process's whole CPU
//      (utime + stime of all its threads: probes and reads inside containers included) are printed
//      per sweep interval next to it, from /proc/<pid>/stat over the same sweeps;
//   2. agent RSS once it covers every container;
//   3. recovery (with notifications): lxcfs is killed with SIGKILL; timed from then until a new lxcfs is
//      mounted, and until every container's mountinfo shows the new lxcfs on all its files (polled from
//      this process); then every container is read through to confirm.
import { readFileSync } from 'node:fs';
import { fuseDevAt, parseMountinfo, topMountAt } from '../src/agent/host/mountinfo.js';
import { DEFAULT_FILES } from '../src/config/defaults.js';
import type { TestContainer } from '../test/helpers/container.js';
import { EXPECTED_MEMTOTAL, LIMITS, TestNode, type AgentProcess } from '../test/helpers/node.js';
import { waitUntil } from '../test/helpers/wait.js';

const SIZES = [200, 1000] as const;
const AIM = {
  healthyAfterLxcfsBackMs: 1000,
  /** With notifications at 200 containers; the fallback's aim holds at every size. */
  idleSweepCpuMs: 10,
  idleSweepCpuFallbackMs: 50,
};
/** Containers created, and read through, this many at a time. */
const CONCURRENCY = 16;
const IDLE_SWEEPS = 9;
/** Probes at the production interval, so the agent's whole CPU per sweep interval is not mostly probes. */
const AGENT_ARGS = ['--probe-interval', '5s'];
const CLOCK_TICKS_PER_S = 100; // USER_HZ: what /proc/<pid>/stat counts in on every Linux architecture we run on

async function inBatches<T, R>(
  items: readonly T[],
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY) {
    results.push(
      ...(await Promise.all(items.slice(i, i + CONCURRENCY).map((item, j) => work(item, i + j)))),
    );
  }
  return results;
}

function allOnDev(containers: readonly TestContainer[], dev: string): boolean {
  return containers.every((c) => {
    const mounts = parseMountinfo(c.mountinfo());
    return DEFAULT_FILES.every((file) => topMountAt(mounts, file)?.dev === dev);
  });
}

function rssMiB(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** utime + stime of a process (all its threads) in ms; 0 without a process. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

function median(sorted: readonly number[]): number {
  return sorted[Math.floor(sorted.length / 2)]!;
}

function verdict(ok: boolean): string {
  return ok ? 'ok' : 'MISSED';
}

interface IdleFigures {
  /** Sorted. */
  sweepCpuMs: number[];
  mountinfoReads: number[];
  agentCpuPerIntervalMs: number;
  watcherCpuPerIntervalMs: number;
}

/**
 * The next periodic sweep's log line after `since` log lines, and the log index after it. Idle sweeps
 * log at debug level, which the test node's agents run at: this way the agent is asked for metrics once
 * per sweep, not polled (a poll costs the agent CPU that would count in its figures).
 */
async function nextPeriodicSweep(agent: AgentProcess, since: number): Promise<number> {
  await agent.waitForLog((l) => l.msg === 'sweep done' && l.trigger === 'periodic', 10_000, since);
  return (
    agent.logs.findIndex(
      (l, i) => i >= since && l.msg === 'sweep done' && l.trigger === 'periodic',
    ) + 1
  );
}

async function idleFigures(
  agent: AgentProcess,
  watcherPid: number | undefined,
): Promise<IdleFigures> {
  let since = await nextPeriodicSweep(agent, agent.logs.length);
  const agentCpuBefore = cpuMs(agent.child.pid);
  const watcherCpuBefore = cpuMs(watcherPid);
  const sweepCpuMs: number[] = [];
  const mountinfoReads: number[] = [];
  while (sweepCpuMs.length < IDLE_SWEEPS) {
    since = await nextPeriodicSweep(agent, since);
    sweepCpuMs.push((await agent.metric('lxcfs_webhook_agent_last_sweep_cpu_seconds')) * 1000);
    mountinfoReads.push(agent.logs[since - 1]!.mountinfoRead as number);
  }
  return {
    sweepCpuMs: sweepCpuMs.sort((a, b) => a - b),
    mountinfoReads,
    agentCpuPerIntervalMs: (cpuMs(agent.child.pid) - agentCpuBefore) / IDLE_SWEEPS,
    watcherCpuPerIntervalMs: (cpuMs(watcherPid) - watcherCpuBefore) / IDLE_SWEEPS,
  };
}

function startAgent(node: TestNode, notifications: boolean): Promise<AgentProcess> {
  return node.startAgent([
    ...AGENT_ARGS,
    ...(notifications ? [] : ['--mount-notifications=false']),
  ]);
}

/** Waits until the agent covers every container (and, with notifications, watches them); the watcher's pid. */
async function covering(
  agent: AgentProcess,
  count: number,
  notifications: boolean,
): Promise<number | undefined> {
  await agent.waitReady(60_000);
  await waitUntil(
    'every container covered',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) === count ? true : undefined,
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  if (!notifications) return undefined;
  await waitUntil(
    'every namespace watched',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_mount_namespaces_watched')) >= count
        ? true
        : undefined,
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return agent.logs.filter((l) => l.msg === 'mount watcher started').at(-1)!.pid as number;
}

async function stopAgent(agent: AgentProcess): Promise<void> {
  agent.kill('SIGTERM');
  await agent.exited;
}

/** kill -9 of lxcfs → every container on the new lxcfs; returns whether every container then reads right. */
async function recovery(
  node: TestNode,
  agent: AgentProcess,
  containers: readonly TestContainer[],
  withAim: boolean,
): Promise<boolean> {
  const oldDev = fuseDevAt(node.ownMounts(), node.fuseMount)!;
  const logsBefore = agent.logs.length;
  const started = performance.now();
  process.kill(node.lxcfsPid(), 'SIGKILL');
  const newDev = await waitUntil(
    'a new lxcfs',
    () => {
      const dev = fuseDevAt(node.ownMounts(), node.fuseMount);
      return dev !== undefined && dev !== oldDev ? dev : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 2 },
  );
  const backMs = performance.now() - started;
  await waitUntil(
    'every container on the new lxcfs',
    () => (allOnDev(containers, newDev) ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 5 },
  );
  const healthyMs = performance.now() - started;
  const sweep = await agent.waitForLog(
    (l) => l.msg === 'sweep done' && l.trigger === 'lxcfs-restart',
    10_000,
    logsBefore,
  );
  const n = containers.length;
  const aim = withAim
    ? `  aim ≤ ${AIM.healthyAfterLxcfsBackMs} ms  ${verdict(healthyMs - backMs <= AIM.healthyAfterLxcfsBackMs)}`
    : '';
  console.log(`  kill -9 lxcfs → new lxcfs mounted:               ${backMs.toFixed(0)} ms`);
  console.log(
    `  new lxcfs mounted → all ${n} containers live:     ${(healthyMs - backMs).toFixed(0)} ms${aim}`,
  );
  console.log(`  kill -9 lxcfs → all ${n} containers live:         ${healthyMs.toFixed(0)} ms`);
  console.log(
    `  repair sweep: ${sweep.remounted} targets remounted, ${sweep.failed} failed, in ${sweep.durationMs} ms`,
  );
  const reads = await inBatches(containers, async (c) =>
    (await c.read('/proc/meminfo', 5000)).stdout.includes(EXPECTED_MEMTOTAL),
  );
  const correct = reads.filter(Boolean).length;
  console.log(
    `  read through afterwards: ${correct}/${n} containers see their 256 MiB in /proc/meminfo`,
  );
  return correct === n && sweep.failed === 0;
}

async function main(): Promise<number> {
  const node = new TestNode();
  let ok = true;
  try {
    const containers: TestContainer[] = [];
    for (const size of SIZES) {
      // Containers need the anchor, so they are created under the first agent of each size.
      let agent = await startAgent(node, true);
      await agent.waitReady(60_000);
      const started = performance.now();
      containers.push(
        ...(await inBatches(Array.from({ length: size - containers.length }), (_, i) =>
          node.container({ name: `c${containers.length + i}`, ...LIMITS, files: DEFAULT_FILES }),
        )),
      );
      console.log(
        `\n${size} containers × ${DEFAULT_FILES.length} lxcfs files (${((performance.now() - started) / 1000).toFixed(1)} s to create the new ones)`,
      );

      for (const notifications of [true, false]) {
        if (!notifications) agent = await startAgent(node, false);
        const watcherPid = await covering(agent, size, notifications);
        const idle = await idleFigures(agent, watcherPid);
        const cpu = median(idle.sweepCpuMs);
        const aimMs = notifications ? AIM.idleSweepCpuMs : AIM.idleSweepCpuFallbackMs;
        const aim =
          notifications && size !== 200 ? '' : `  aim ≤ ${aimMs} ms  ${verdict(cpu <= aimMs)}`;
        console.log(
          `${notifications ? 'with mount notifications' : 'fallback (--mount-notifications=false)'}:`,
        );
        console.log(
          `  idle sweep CPU:         ${cpu.toFixed(1)} ms (median of ${idle.sweepCpuMs.length}: ${idle.sweepCpuMs.map((c) => c.toFixed(1)).join(', ')})${aim}`,
        );
        console.log(`  mountinfo read/sweep:   ${idle.mountinfoReads.join(', ')}`);
        console.log(
          `  per sweep interval:     agent process ${idle.agentCpuPerIntervalMs.toFixed(1)} ms CPU (sweep, reads inside 10 containers, probes), watcher ${notifications ? `${idle.watcherCpuPerIntervalMs.toFixed(1)} ms` : '-'}`,
        );
        console.log(
          `  agent RSS:              ${rssMiB(agent.child.pid!).toFixed(1)} MiB${watcherPid ? `, watcher ${rssMiB(watcherPid).toFixed(1)} MiB` : ''} (lxcfs: ${rssMiB(node.lxcfsPid()).toFixed(1)} MiB)`,
        );
        if (notifications) ok = (await recovery(node, agent, containers, size === 200)) && ok;
        await stopAgent(agent);
      }
    }
    return ok ? 0 : 1;
  } finally {
    await node.cleanup();
  }
}

process.exitCode = await main();
