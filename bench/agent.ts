// Benchmark of `lxcfs-webhook agent` on a node with 200 containers × 8 lxcfs files: the real agent
// process, real lxcfs, real containers (mount + pid namespaces, memory/cpu cgroups; see
// test/helpers/container.ts). Needs root, lxcfs and fuse3, like the agent's tests.
//   1. idle sweep: CPU time the agent spends in one periodic sweep when nothing is broken (its
//      lxcfs_webhook_agent_last_sweep_cpu_seconds), median over several sweeps;
//   2. agent RSS once it covers every container;
//   3. recovery: lxcfs is killed with SIGKILL; timed from then until a new lxcfs is mounted, and until
//      every container's mountinfo shows the new lxcfs on all its files (polled from this process);
//      then every container is read through to confirm.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fuseDevAt, parseMountinfo, topMountAt } from '../src/agent/host/mountinfo.js';
import { DEFAULT_FILES } from '../src/config/defaults.js';
import type { TestContainer } from '../test/helpers/container.js';
import { EXPECTED_MEMTOTAL, LIMITS, TestNode, type AgentProcess } from '../test/helpers/node.js';

const CONTAINERS = 200;
const AIM = { healthyAfterLxcfsBackMs: 1000, idleSweepCpuMs: 50 };
/** Containers created, and read through, this many at a time. */
const CONCURRENCY = 16;
const IDLE_SWEEPS = 9;

async function inBatches<T, R>(items: readonly T[], work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY) {
    results.push(...(await Promise.all(items.slice(i, i + CONCURRENCY).map((item, j) => work(item, i + j)))));
  }
  return results;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 5): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
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

async function idleSweepCpuMs(agent: AgentProcess): Promise<number[]> {
  const samples: number[] = [];
  let sweeps = await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="periodic"');
  while (samples.length < IDLE_SWEEPS) {
    await waitFor('a periodic sweep', async () => ((await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="periodic"')) > sweeps ? true : undefined), 10_000, 50);
    sweeps = await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="periodic"');
    samples.push((await agent.metric('lxcfs_webhook_agent_last_sweep_cpu_seconds')) * 1000);
  }
  return samples.sort((a, b) => a - b);
}

function verdict(ok: boolean): string {
  return ok ? 'ok' : 'MISSED';
}

async function main(): Promise<number> {
  const node = new TestNode();
  try {
    const agent = await node.startAgent();
    await agent.waitReady();

    let started = performance.now();
    const containers = await inBatches(Array.from({ length: CONTAINERS }), (_, i) => node.container({ name: `c${i}`, ...LIMITS, files: DEFAULT_FILES }));
    console.log(`${CONTAINERS} containers × ${DEFAULT_FILES.length} lxcfs files created in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await waitFor('every container covered', async () => ((await agent.metric('lxcfs_webhook_agent_containers_covered')) === CONTAINERS ? true : undefined), 30_000, 100);

    const cpu = await idleSweepCpuMs(agent);
    const medianCpu = cpu[Math.floor(cpu.length / 2)]!;
    console.log(`idle sweep CPU:         ${medianCpu.toFixed(1)} ms (median of ${cpu.length}: ${cpu.map((c) => c.toFixed(1)).join(', ')})  aim ≤ ${AIM.idleSweepCpuMs} ms  ${verdict(medianCpu <= AIM.idleSweepCpuMs)}`);
    console.log(`agent RSS:              ${rssMiB(agent.child.pid!).toFixed(1)} MiB (lxcfs: ${rssMiB(node.lxcfsPid()).toFixed(1)} MiB)`);

    const oldDev = fuseDevAt(node.ownMounts(), node.fuseMount)!;
    const logsBefore = agent.logs.length;
    started = performance.now();
    process.kill(node.lxcfsPid(), 'SIGKILL');
    const newDev = await waitFor('a new lxcfs', () => {
      const dev = fuseDevAt(node.ownMounts(), node.fuseMount);
      return dev !== undefined && dev !== oldDev ? dev : undefined;
    }, 30_000, 2);
    const backMs = performance.now() - started;
    await waitFor('every container on the new lxcfs', () => (allOnDev(containers, newDev) ? true : undefined), 30_000);
    const healthyMs = performance.now() - started;
    const sweep = await agent.waitForLog((l) => l.msg === 'sweep done' && l.trigger === 'lxcfs-restart', 5000, logsBefore);

    console.log(`kill -9 lxcfs → new lxcfs mounted:               ${backMs.toFixed(0)} ms`);
    console.log(`new lxcfs mounted → all ${CONTAINERS} containers live:     ${(healthyMs - backMs).toFixed(0)} ms  aim ≤ ${AIM.healthyAfterLxcfsBackMs} ms  ${verdict(healthyMs - backMs <= AIM.healthyAfterLxcfsBackMs)}`);
    console.log(`kill -9 lxcfs → all ${CONTAINERS} containers live:         ${healthyMs.toFixed(0)} ms`);
    console.log(`repair sweep: ${sweep.remounted} targets remounted, ${sweep.failed} failed, in ${sweep.durationMs} ms`);

    const reads = await inBatches(containers, async (c) => (await c.read('/proc/meminfo', 5000)).stdout.includes(EXPECTED_MEMTOTAL));
    const correct = reads.filter(Boolean).length;
    console.log(`read through afterwards: ${correct}/${CONTAINERS} containers see their 256 MiB in /proc/meminfo`);
    return correct === CONTAINERS && sweep.failed === 0 ? 0 : 1;
  } finally {
    await node.cleanup();
  }
}

process.exitCode = await main();
