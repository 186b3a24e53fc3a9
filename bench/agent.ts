// Benchmark of `lxcfs-webhook agent` on a node with 200 and then 1,000 containers × 8 lxcfs files: the
// real agent process, real lxcfs, real containers (mount + pid namespaces, memory/cpu cgroups; see
// test/helpers/container.ts). Needs root, lxcfs and fuse3, like the agent's tests. Every agent runs in a
// cgroup of its own, as in its pod: lxcfs' loadavg thread rescans the cgroup of whoever reads loadavg
// from the node's pid namespace (the agent's reads inside containers do), every 5 s. Every agent runs a
// node binary no other process maps, as in its pod (TestNode.useOwnNodeBinary). For each size:
//   1. standing cost: an agent with the production defaults (intervals, log level, Node flags) covering
//      every container and past the page-out of its start-up's code, then a quiet window in which
//      nothing happens and nobody asks the agent anything:
//      CPU per second of the agent, its helpers and lxcfs, and their RSS (test/helpers/standing-cost.ts);
//      with notifications and without (--mount-notifications=false, the fallback);
//   2. sweeps: the CPU the agent spends in one sweep (its lxcfs_webhook_agent_last_sweep_cpu_seconds),
//      median over several: with notifications, a sweep after one container's mount table changed and
//      a safety-net sweep that reads every table; without, a poll. The agent process's whole CPU per
//      sweep (events, probes and reads inside containers included) is printed next to it, from
//      /proc/<pid>/stat;
//   3. recovery (with notifications): lxcfs is killed with SIGKILL; timed from then until a new lxcfs is
//      mounted, and until every container's mountinfo shows the new lxcfs on all its files (polled from
//      this process); then every container is read through to confirm.
//
// `node dist/bench/agent.js [--sizes=200,1000] [--phases=standing,sweep] [--window=60]` runs a part.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { fuseDevAt, parseMountinfo, topMountAt } from '../src/agent/host/mountinfo.js';
import {
  AGENT_NODE_FLAGS,
  CODE_RELEASE_QUIET_SWEEP_INTERVALS,
  DEFAULT_FILES,
  DEFAULT_FULL_SWEEP_INTERVAL_MS,
  DEFAULT_HANG_GRACE_MS,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_SWEEP_INTERVAL_MS,
} from '../src/config/defaults.js';
import type { TestContainer } from '../test/helpers/container.js';
import type { LogLine } from '../test/helpers/log-lines.js';
import { EXPECTED_MEMTOTAL, LIMITS, TestNode, type AgentProcess } from '../test/helpers/node.js';
import { waitUntil } from '../test/helpers/wait.js';
import {
  cpuTimes,
  formatStandingCost,
  measureStandingCost,
  peakRssMiB,
  rssMiB,
  type StandingCost,
} from '../test/helpers/standing-cost.js';

const { values: cli } = parseArgs({
  options: {
    sizes: { type: 'string', default: '200,1000' },
    phases: { type: 'string', default: 'standing,sweep,flags' },
    window: { type: 'string', default: '60' },
  },
});
const SIZES = cli.sizes.split(',').map(Number);
const PHASES = new Set(cli.phases.split(','));
/** The quiet window of the standing cost, as in issue 22: 60 s. */
const STANDING_WINDOW_MS = Number(cli.window) * 1000;
/** After the agent covers every container: its start-up work and the collections after it are over. */
const STANDING_SETTLE_MS = 15_000;
/** The agent's production defaults (the test node's agents run with short intervals). */
const PRODUCTION_ARGS = [
  `--sweep-interval=${DEFAULT_SWEEP_INTERVAL_MS}ms`,
  `--full-sweep-interval=${DEFAULT_FULL_SWEEP_INTERVAL_MS}ms`,
  `--probe-interval=${DEFAULT_PROBE_INTERVAL_MS}ms`,
  `--probe-timeout=${DEFAULT_PROBE_TIMEOUT_MS}ms`,
  `--hang-grace=${DEFAULT_HANG_GRACE_MS}ms`,
];
/** The flags phase runs at this size, over a shorter quiet window (RSS is what it is about). */
const FLAGS_SIZE = 200;
const FLAGS_WINDOW_MS = 20_000;
/** Node's defaults, each of the agent's flags alone, and all of them (the image's). */
const FLAG_SETS: readonly (readonly string[])[] = [
  [],
  ...AGENT_NODE_FLAGS.map((flag) => [flag]),
  AGENT_NODE_FLAGS,
];
/** Issue 22's aims at 200 containers (standing cost) and issue 12's (sweeps, recovery). */
const AIM = {
  agentMsPerS: 1,
  lxcfsMsPerS: 0.5,
  agentRssMiB: 40,
  healthyAfterLxcfsBackMs: 1000,
  /** A sweep that reads one changed table, at 200 containers (issue 12's idle sweep with notifications). */
  changeSweepCpuMs: 10,
  /** A sweep that reads every table, at every size. */
  fullSweepCpuMs: 50,
};
/** Containers created, and read through, this many at a time. */
const CONCURRENCY = 16;
const SWEEPS = 9;
/** Probes at the production interval, so the agent's whole CPU per sweep is not mostly probes. */
const AGENT_ARGS = ['--probe-interval', '5s'];

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

/** utime + stime of a process (all its threads) in ms. */
function cpuMs(pid: number): number {
  return cpuTimes(pid)!.own;
}

function median(sorted: readonly number[]): number {
  return sorted[Math.floor(sorted.length / 2)]!;
}

function verdict(ok: boolean): string {
  return ok ? 'ok' : 'MISSED';
}

interface SweepFigures {
  /** Sorted. */
  sweepCpuMs: number[];
  mountinfoReads: number[];
  /** The agent process's whole CPU per sweep (events, probes and reads inside containers included). */
  agentCpuPerSweepMs: number;
  /** Its helpers' (reads inside containers) and lxcfs' CPU per sweep. */
  helpersCpuPerSweepMs: number;
  lxcfsCpuPerSweepMs: number;
}

/**
 * The next sweep with `trigger` logged after `since` log lines, and the log index after it. Sweeps
 * that find nothing broken log at debug level, which the test node's agents run at: this way the agent
 * is asked for metrics once per sweep, not polled (a poll costs the agent CPU that would count in its
 * figures).
 */
async function nextSweep(agent: AgentProcess, trigger: string, since: number): Promise<number> {
  const isIt = (l: LogLine) => l.msg === 'sweep done' && l.trigger === trigger;
  await agent.waitForLog(isIt, 10_000, since);
  return agent.logs.findIndex((l, i) => i >= since && isIt(l)) + 1;
}

/**
 * CPU of SWEEPS sweeps with `trigger` (from the agent's last_sweep_cpu_seconds), each caused by
 * `cause(i)`, or by the agent's own timer without one.
 */
async function sweepFigures(
  node: TestNode,
  agent: AgentProcess,
  trigger: string,
  cause?: (i: number) => Promise<void>,
): Promise<SweepFigures> {
  let since = cause ? agent.logs.length : await nextSweep(agent, trigger, agent.logs.length);
  const lxcfsPid = node.lxcfsPid();
  const agentCpuBefore = cpuTimes(agent.child.pid!)!;
  const lxcfsCpuBefore = cpuMs(lxcfsPid);
  const sweepCpuMs: number[] = [];
  const mountinfoReads: number[] = [];
  while (sweepCpuMs.length < SWEEPS) {
    await cause?.(sweepCpuMs.length);
    since = await nextSweep(agent, trigger, since);
    sweepCpuMs.push((await agent.metric('lxcfs_webhook_agent_last_sweep_cpu_seconds')) * 1000);
    mountinfoReads.push(agent.logs[since - 1]!.mountinfoRead as number);
  }
  // Reads inside containers asked for by the last sweep finish after it: give them a moment.
  await sleep(1000);
  const agentCpu = cpuTimes(agent.child.pid!)!;
  return {
    sweepCpuMs: sweepCpuMs.sort((a, b) => a - b),
    mountinfoReads,
    agentCpuPerSweepMs: (agentCpu.own - agentCpuBefore.own) / SWEEPS,
    helpersCpuPerSweepMs: (agentCpu.children - agentCpuBefore.children) / SWEEPS,
    lxcfsCpuPerSweepMs: (cpuMs(lxcfsPid) - lxcfsCpuBefore) / SWEEPS,
  };
}

/** A mount table change in one container: a tmpfs mounted on /mnt, or unmounted again. */
async function mountChange(containers: readonly TestContainer[], i: number): Promise<void> {
  const c = containers[Math.floor(i / 2) % containers.length]!;
  const argv = i % 2 === 0 ? ['mount', '-t', 'tmpfs', 'bench', '/mnt'] : ['umount', '/mnt'];
  const run = await c.exec(argv);
  if (run.code !== 0) throw new Error(`${argv.join(' ')} in ${c.spec.name}: ${run.stderr}`);
}

function printSweeps(what: string, figures: SweepFigures, aimMs?: number): void {
  const cpu = median(figures.sweepCpuMs);
  const aim = aimMs === undefined ? '' : `  aim ≤ ${aimMs} ms  ${verdict(cpu <= aimMs)}`;
  console.log(
    `  ${what}: ${cpu.toFixed(1)} ms CPU (median of ${figures.sweepCpuMs.length}: ${figures.sweepCpuMs.map((c) => c.toFixed(1)).join(', ')})${aim}`,
  );
  console.log(
    `    mountinfo read/sweep ${figures.mountinfoReads.join(', ')}; per sweep: agent process ${figures.agentCpuPerSweepMs.toFixed(1)} ms CPU, helpers ${figures.helpersCpuPerSweepMs.toFixed(1)} ms, lxcfs ${figures.lxcfsCpuPerSweepMs.toFixed(1)} ms`,
  );
}

function startAgent(
  node: TestNode,
  notifications: boolean,
  extra: readonly string[] = [],
): Promise<AgentProcess> {
  return node.startAgent(
    [...AGENT_ARGS, ...(notifications ? [] : ['--mount-notifications=false']), ...extra],
    { ownCgroup: true },
  );
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
  return agent.logs.filter((l) => l.msg === 'mount watcher started').at(-1)?.pid as
    number | undefined;
}

async function stopAgent(agent: AgentProcess): Promise<void> {
  agent.kill('SIGTERM');
  await agent.exited;
}

interface RecoveryFigures {
  /** kill -9 → a new lxcfs mounted */
  backMs: number;
  /** kill -9 → every container's mountinfo shows the new lxcfs on all its files */
  healthyMs: number;
  /** The repair sweep's log line. */
  sweep: LogLine;
}

/** kill -9 of lxcfs → every container on the new lxcfs. */
async function timeRecovery(
  node: TestNode,
  agent: AgentProcess,
  containers: readonly TestContainer[],
): Promise<RecoveryFigures> {
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
  return { backMs, healthyMs, sweep };
}

/** Times a recovery, then reads every container through; returns whether every one reads right. */
async function recovery(
  node: TestNode,
  agent: AgentProcess,
  containers: readonly TestContainer[],
  withAim: boolean,
): Promise<boolean> {
  const { backMs, healthyMs, sweep } = await timeRecovery(node, agent, containers);
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
    `  repair sweep: ${sweep.remounted} targets remounted, ${sweep.failed} failed, in ${sweep.durationMs} ms, ${sweep.cpuMs} ms CPU`,
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

/** The agent under each set of Node flags: resident memory, CPU while quiet, and what recovery costs. */
async function flagCosts(node: TestNode, containers: readonly TestContainer[]): Promise<void> {
  const size = containers.length;
  console.log(
    `Node flags at ${size} containers (production defaults otherwise; RSS before and after the page-out of start-up's code, peak RSS after a recovery):`,
  );
  for (const nodeFlags of FLAG_SETS) {
    const agent = await node.startAgent(PRODUCTION_ARGS, {
      logLevel: 'info',
      nodeFlags,
      ownCgroup: true,
    });
    await covering(agent, size, true);
    const pageOut = await codePagesGivenBack(agent);
    await sleep(STANDING_SETTLE_MS);
    const quiet = await measureStandingCost(agent.child.pid!, node.lxcfsPid(), FLAGS_WINDOW_MS);
    const { backMs, healthyMs, sweep } = await timeRecovery(node, agent, containers);
    console.log(
      `  ${(nodeFlags.join(' ') || "(Node's defaults)").padEnd(44)} RSS ${Number(pageOut.rssBeforeMiB).toFixed(1)} → ${quiet.agentRssMiB.toFixed(1)} MiB, peak ${peakRssMiB(agent.child.pid!).toFixed(1)} MiB; ` +
        `quiet ${quiet.agentMsPerS.toFixed(2)} ms/s; new lxcfs → all live ${(healthyMs - backMs).toFixed(0)} ms, repair sweep ${sweep.cpuMs} ms CPU`,
    );
    await stopAgent(agent);
  }
}

/**
 * The agent's log line of the page-out of start-up's code, which comes three sweep intervals after its
 * start sweep: the quiet window starts after it.
 */
function codePagesGivenBack(agent: AgentProcess): Promise<LogLine> {
  return agent.waitForLog(
    (l) => l.msg === 'code pages given back',
    (CODE_RELEASE_QUIET_SWEEP_INTERVALS + 2) * DEFAULT_SWEEP_INTERVAL_MS,
  );
}

/** The agent's CPU per request of `path` (the mean of 100, after 10 to warm up). */
async function requestCpuMs(agent: AgentProcess, path: string): Promise<number> {
  for (let i = 0; i < 10; i++) await agent.get(path);
  const before = cpuMs(agent.child.pid!);
  for (let i = 0; i < 100; i++) await agent.get(path);
  return (cpuMs(agent.child.pid!) - before) / 100;
}

/** An agent with the production defaults on `size` containers: its standing cost over a quiet window. */
async function standingCost(
  node: TestNode,
  size: number,
  notifications: boolean,
): Promise<StandingCost> {
  // Debug level, so every sweep in the window is seen (an idle one logs only there); it costs a line per sweep.
  const agent = await node.startAgent(
    [...PRODUCTION_ARGS, ...(notifications ? [] : ['--mount-notifications=false'])],
    { logLevel: 'debug', ownCgroup: true },
  );
  await covering(agent, size, notifications);
  const pageOut = await codePagesGivenBack(agent);
  await sleep(STANDING_SETTLE_MS);
  const logsBefore = agent.logs.length;
  const cost = await measureStandingCost(agent.child.pid!, node.lxcfsPid(), STANDING_WINDOW_MS);
  const swept = agent.logs.slice(logsBefore).filter((l) => l.msg === 'sweep done');
  const sweepMs = swept.reduce((sum, l) => sum + Number(l.cpuMs ?? NaN), 0);
  const triggers = [...new Set(swept.map((l) => String(l.trigger)))].join(', ') || 'none';
  // An agent before issue 22 logs no cpuMs: its sweeps' share stays unknown.
  const without = Number.isNaN(sweepMs)
    ? 'its sweeps log no CPU'
    : `${sweepMs.toFixed(1)} ms CPU: without them the agent used ${(cost.agentMsPerS - sweepMs / cost.windowS).toFixed(2)} ms/s`;
  console.log(
    `standing cost, ${notifications ? 'with notifications' : 'fallback (--mount-notifications=false)'}, production defaults:`,
  );
  console.log(`  ${formatStandingCost(cost)}`);
  console.log(
    `  RSS ${Number(pageOut.rssBeforeMiB).toFixed(1)} MiB before the page-out of start-up's code (${String(pageOut.advisedMiB)} MiB advised), ${Number(pageOut.rssAfterMiB).toFixed(1)} MiB right after it`,
  );
  console.log(
    `  ${swept.length} sweeps in the window (${triggers}), ${without}` +
      (swept.some((l) => l.trigger === 'change')
        ? ' (change sweeps here follow other work on this shared machine: its mount tables and cgroups change)'
        : ''),
  );
  if (notifications) {
    // What the kubelet's probes (readiness every 5 s, liveness every 10 s) and a scrape add to it.
    const perRequest = [];
    for (const path of ['/readyz', '/livez', '/metrics'])
      perRequest.push(`${path} ${(await requestCpuMs(agent, path)).toFixed(2)} ms`);
    console.log(
      `  agent CPU per request: ${perRequest.join(', ')}; RSS after those 330 requests ${rssMiB(agent.child.pid!).toFixed(1)} MiB`,
    );
  }
  if (notifications && size === 200)
    console.log(
      `  aims at 200: agent ≤ ${AIM.agentMsPerS} ms/s ${verdict(cost.agentMsPerS <= AIM.agentMsPerS)}, ` +
        `lxcfs ≤ ${AIM.lxcfsMsPerS} ms/s ${verdict(cost.lxcfsMsPerS <= AIM.lxcfsMsPerS)}, ` +
        `agent RSS ≤ ${AIM.agentRssMiB} MiB ${verdict(cost.agentRssMiB <= AIM.agentRssMiB)}`,
    );
  await stopAgent(agent);
  return cost;
}

/** Sweep CPU with notifications (a change, the safety net) and without (a poll); recovery. */
async function sweeps(
  node: TestNode,
  containers: readonly TestContainer[],
): Promise<{ ok: boolean; full: SweepFigures }> {
  const size = containers.length;
  console.log('sweeps:');
  let agent = await startAgent(node, true);
  const watcherPid = await covering(agent, size, true);
  printSweeps(
    "with notifications, one container's mount table changed",
    await sweepFigures(node, agent, 'change', (i) => mountChange(containers, i)),
    size === 200 ? AIM.changeSweepCpuMs : undefined,
  );
  console.log(
    `    agent RSS ${rssMiB(agent.child.pid!).toFixed(1)} MiB${watcherPid ? `, watcher ${rssMiB(watcherPid).toFixed(1)} MiB` : ''} (lxcfs: ${rssMiB(node.lxcfsPid()).toFixed(1)} MiB)`,
  );
  const ok = await recovery(node, agent, containers, size === 200);
  await stopAgent(agent);

  agent = await startAgent(node, true, ['--full-sweep-interval=1s']);
  await covering(agent, size, true);
  await codePagesGivenBack(agent);
  const full = await sweepFigures(node, agent, 'full');
  printSweeps(
    'with notifications, the safety net (every table read, 10 containers read inside)',
    full,
    AIM.fullSweepCpuMs,
  );
  // The code and heap a safety-net sweep uses stay resident: what a node sees between its sweeps.
  console.log(
    `    agent RSS after these sweeps (past the page-out of start-up's code) ${rssMiB(agent.child.pid!).toFixed(1)} MiB`,
  );
  await stopAgent(agent);

  agent = await startAgent(node, false);
  await covering(agent, size, false);
  printSweeps(
    'fallback (--mount-notifications=false): a poll',
    await sweepFigures(node, agent, 'poll'),
    AIM.fullSweepCpuMs,
  );
  await stopAgent(agent);
  return { ok, full };
}

/**
 * The quiet window is shorter than the safety net's interval: its sweep (and the reads inside 10
 * containers it asks for), spread over that interval, is added here.
 */
function printWithSafetyNet(cost: StandingCost, full: SweepFigures): void {
  const perS = (ms: number) => (ms / (DEFAULT_FULL_SWEEP_INTERVAL_MS / 1000)).toFixed(2);
  console.log(
    `standing cost with notifications, the safety net's sweep every ${DEFAULT_FULL_SWEEP_INTERVAL_MS / 60_000} min spread over its interval: ` +
      `agent ${(cost.agentMsPerS + Number(perS(full.agentCpuPerSweepMs))).toFixed(2)} ms/s (+${perS(full.agentCpuPerSweepMs)}), ` +
      `helpers ${(cost.helpersMsPerS + Number(perS(full.helpersCpuPerSweepMs))).toFixed(2)} ms/s (+${perS(full.helpersCpuPerSweepMs)}), ` +
      `lxcfs ${(cost.lxcfsMsPerS + Number(perS(full.lxcfsCpuPerSweepMs))).toFixed(2)} ms/s (+${perS(full.lxcfsCpuPerSweepMs)})`,
  );
}

async function main(): Promise<number> {
  const node = new TestNode();
  node.useOwnNodeBinary();
  let ok = true;
  try {
    const containers: TestContainer[] = [];
    for (const size of SIZES) {
      // Containers need the anchor, so they are created under the first agent of each size.
      const first = await startAgent(node, true);
      await first.waitReady(60_000);
      const started = performance.now();
      containers.push(
        ...(await inBatches(Array.from({ length: size - containers.length }), (_, i) =>
          node.container({ name: `c${containers.length + i}`, ...LIMITS, files: DEFAULT_FILES }),
        )),
      );
      console.log(
        `\n${size} containers × ${DEFAULT_FILES.length} lxcfs files (${((performance.now() - started) / 1000).toFixed(1)} s to create the new ones)`,
      );

      await stopAgent(first);

      const notified = PHASES.has('standing') ? await standingCost(node, size, true) : undefined;
      if (PHASES.has('standing')) await standingCost(node, size, false);
      if (PHASES.has('sweep')) {
        const swept = await sweeps(node, containers);
        ok = swept.ok && ok;
        if (notified) printWithSafetyNet(notified, swept.full);
      }
      if (PHASES.has('flags') && size === FLAGS_SIZE) await flagCosts(node, containers);
    }
    return ok ? 0 : 1;
  } finally {
    await node.cleanup();
  }
}

process.exitCode = await main();
