// Fault injection against the real agent, lxcfs and containers: what an attack run did, bounded in
// time, each test printing its figures ("# figure: ..." in the TAP output). Recovery means every
// injected file reads without an error in every container again, and the limits are right.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  fuseDevAt,
  mountsAtOrBelow,
  parseMountinfo,
  topMountAt,
} from '../../src/agent/host/mountinfo.js';
import { AGENT_STATE_DIR, DEFAULT_FILES } from '../../src/config/defaults.js';
import type { TestContainer } from '../helpers/container.js';
import { cliPath } from '../helpers/paths.js';
import {
  helperPath,
  readsLimits,
  scratchNode,
  startReadyAgent,
  statOutcome,
  targetDepths,
  waitAllHealthy,
  waitRemembered,
  withLxcfs,
  type AgentProcess,
  type TestNode,
} from '../helpers/node.js';
import type { LogLine } from '../helpers/log-lines.js';
import { waitUntil } from '../helpers/wait.js';

/** `min/median/max` of a list of milliseconds. */
function spread(ms: readonly number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms (n=${sorted.length})`;
}

function figure(t: TestContext, text: string): void {
  t.diagnostic(`figure: ${text}`);
}

/** A few containers of every kind the agent must repair: plain, read-only file, no shell or mount binary. */
async function workloads(node: TestNode, count: number): Promise<TestContainer[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      node.container({
        name: `w${i}`,
        ...withLxcfs,
        ...(i % 3 === 1 ? { readOnlyFiles: ['/proc/cpuinfo'] } : {}),
        ...(i % 3 === 2 ? { minimal: true } : {}),
      }),
    ),
  );
}

const readsAll = async (containers: readonly TestContainer[]) =>
  (await Promise.all(containers.map((c) => c.readsEvery(DEFAULT_FILES)))).every(Boolean);

/** Milliseconds from `since` until every container reads every file; fails after 20 s naming what does not. */
async function recoveryMs(containers: readonly TestContainer[], since: number): Promise<number> {
  try {
    await waitUntil('every container reads every lxcfs file again', () => readsAll(containers), {
      timeoutMs: 20_000,
    });
  } catch (err) {
    const failing = await Promise.all(
      containers.map(async (c) => {
        const reads = await Promise.all(
          DEFAULT_FILES.map(async (f) => [f, (await c.read(f, 2000)).stderr.trim()] as const),
        );
        return `${c.spec.name}: ${reads
          .filter(([, e]) => e !== '')
          .map(([f, e]) => `${f} ${e}`)
          .join('; ')}\n${c.mountinfo()}`;
      }),
    );
    throw new Error(`${(err as Error).message}\n${failing.join('\n')}`, { cause: err });
  }
  return Date.now() - since;
}

/** Mounts under the node's scratch directory in the agent's (the test's) namespace. */
function anchorMountCount(node: TestNode): number {
  return node.ownMounts().filter((m) => m.mountPoint.startsWith(node.dir)).length;
}

/** A lxcfs file's lifetime is 1 s in the kernel's dentry cache; older lookups revalidate through FUSE. */
const ENTRY_TIMEOUT_MS = 1100;

test('20 kill -9 cycles of lxcfs, with lookups in the dead window: every container recovers every time', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const containers = await workloads(node, 6);
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) === containers.length,
  );
  const depths = containers.map(targetDepths);
  const mountsBefore = anchorMountCount(node);

  const recoveries: number[] = [];
  let deadLookups = 0;
  for (let cycle = 0; cycle < 20; cycle++) {
    await sleep(ENTRY_TIMEOUT_MS);
    const killedAt = Date.now();
    process.kill(node.lxcfsPid(), 'SIGKILL');
    // Every other cycle, look the anchor's files up in the dead window, as runc and the kubelet would.
    if (cycle % 2 === 0) {
      await sleep(20);
      deadLookups += DEFAULT_FILES.map((f) => statOutcome(join(node.anchor, f))).filter(
        (o) => o === 'ENOTCONN',
      ).length;
    }
    try {
      recoveries.push(await recoveryMs(containers, killedAt));
    } catch (err) {
      const lines = agent.logs.slice(-40).map((l) => JSON.stringify(l));
      throw new Error(
        `cycle ${cycle}: ${(err as Error).message}\nthe agent's last lines:\n${lines.join('\n')}`,
        {
          cause: err,
        },
      );
    }
  }
  figure(
    t,
    `recovery after kill -9 of lxcfs, ${containers.length} containers: ${spread(recoveries)}`,
  );
  figure(t, `lookups that hit the dead lxcfs: ${deadLookups}`);
  assert.ok(deadLookups > 0, 'some lookups reached the dead window');
  assert.equal(await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="failed"'), 0);
  assert.deepEqual(
    containers.map(targetDepths),
    depths,
    'dead mounts were replaced, never stacked',
  );
  assert.equal(anchorMountCount(node), mountsBefore, "the agent's own mounts did not grow");
  assert.ok(
    (await Promise.all(containers.map(readsLimits))).every(Boolean),
    'and the values are the limits',
  );
});

test('SIGSTOP: lxcfs is killed when the hang grace is over, not a probe later, and containers recover', async (t) => {
  const node = scratchNode(t);
  const graceMs = 2000;
  const probeIntervalMs = 200;
  // A probe timeout close to the grace: counting from the end of the first failed probe would be late.
  const agent = await startReadyAgent(node, [
    '--hang-grace',
    `${graceMs}ms`,
    '--probe-interval',
    `${probeIntervalMs}ms`,
    '--probe-timeout',
    '1500ms',
  ]);
  const containers = await workloads(node, 3);
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) === containers.length,
  );

  const killDelays: number[] = [];
  const recoveries: number[] = [];
  for (let cycle = 0; cycle < 3; cycle++) {
    const logsBefore = agent.logs.length;
    const stoppedAt = Date.now();
    process.kill(node.lxcfsPid(), 'SIGSTOP');
    const killed = await agent.waitForLog(
      (l) => l.msg === 'lxcfs is hung: killing it to restart it',
      10_000,
      logsBefore,
    );
    killDelays.push(Date.parse(String(killed.time)) - stoppedAt);
    recoveries.push(await recoveryMs(containers, stoppedAt));
    await agent.waitReady(10_000);
  }
  figure(
    t,
    `hang grace ${graceMs} ms, probe every ${probeIntervalMs} ms: killed after ${spread(killDelays)}`,
  );
  figure(t, `recovery from SIGSTOP: ${spread(recoveries)}`);
  // The first unanswered probe is sent at most one interval after the stop; scheduling adds a little.
  for (const delay of killDelays)
    assert.ok(
      delay >= graceMs && delay <= graceMs + probeIntervalMs + 700,
      `killed after ${delay} ms`,
    );
});

test('the agent killed and started again 10 times: containers recover, and no mount table grows', async (t) => {
  const node = scratchNode(t);
  let agent = await startReadyAgent(node);
  const containers = await workloads(node, 3);
  await waitAllHealthy(containers);
  const depths = containers.map(targetDepths);
  const mountsBefore = anchorMountCount(node);

  const recoveries: number[] = [];
  for (let cycle = 0; cycle < 10; cycle++) {
    // As a runtime kills a DaemonSet pod: every other time with its lxcfs, else lxcfs is left orphaned.
    const lxcfs = node.lxcfsPid();
    agent.kill('SIGKILL');
    if (cycle % 2 === 0) process.kill(lxcfs, 'SIGKILL');
    await agent.exited;
    const restartedAt = Date.now();
    agent = await startReadyAgent(node);
    recoveries.push(await recoveryMs(containers, restartedAt));
  }
  figure(t, `recovery after an agent restart, from its start: ${spread(recoveries)}`);
  assert.deepEqual(containers.map(targetDepths), depths, 'container mount tables did not grow');
  assert.equal(anchorMountCount(node), mountsBefore, "the node's mount table did not grow");
});

test('containers started while lxcfs is dead fail to start; the others recover, and a retried start works', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const containers = await workloads(node, 3);
  await waitAllHealthy(containers);
  await sleep(ENTRY_TIMEOUT_MS);

  // The agent frozen, so lxcfs stays dead while the runtime tries to start a pod.
  agent.kill('SIGSTOP');
  const killedAt = Date.now();
  process.kill(node.lxcfsPid(), 'SIGKILL');
  await sleep(50);
  await assert.rejects(
    node.container({ name: 'started-dead', ...withLxcfs }),
    /Transport endpoint is not connected/,
  );
  agent.kill('SIGCONT');

  const recovered = await recoveryMs(containers, killedAt);
  const retried = await node.container({ name: 'retried', ...withLxcfs });
  assert.ok(await readsLimits(retried), 'a container started after recovery reads its limits');
  figure(
    t,
    `recovery with a failed container start in the dead window: ${recovered} ms after the kill`,
  );
});

test('short-lived processes inside containers during sweeps never make a remount fail', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const containers = (await workloads(node, 3)).filter((c) => !c.spec.minimal);
  await waitAllHealthy(containers);

  // Exec probes and `kubectl exec`: processes that join the container and are gone a moment later.
  let churning = true;
  let execs = 0;
  const churn = Promise.all(
    containers.map(async (c) => {
      while (churning) {
        await new Promise((resolve) =>
          spawn(
            'nsenter',
            ['-t', String(c.pid), '-m', '-p', 'sh', '-c', 'sleep 0.0$((RANDOM % 9))'],
            { stdio: 'ignore' },
          ).on('exit', resolve),
        );
        execs++;
      }
    }),
  );
  const recoveries: number[] = [];
  try {
    for (let cycle = 0; cycle < 5; cycle++) {
      const killedAt = Date.now();
      process.kill(node.lxcfsPid(), 'SIGKILL');
      recoveries.push(await recoveryMs(containers, killedAt));
    }
  } finally {
    churning = false;
    await churn;
  }
  figure(t, `${execs} short-lived execs during 5 kill cycles; recovery ${spread(recoveries)}`);
  assert.equal(await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="failed"'), 0);
});

// ---- issue 23: what one workload can cost the agent, bounded -----------------------------------------

/** Every injected file of every container on connection `dev`, as mountinfo shows it. */
function allOnDev(containers: readonly TestContainer[], dev: string): boolean {
  return containers.every((c) => {
    const mounts = parseMountinfo(c.mountinfo());
    return DEFAULT_FILES.every((file) => topMountAt(mounts, file)?.dev === dev);
  });
}

/**
 * kill -9 of lxcfs, then: how long until a new lxcfs is mounted, and from then until every container
 * has every file on it (polled in mountinfo every 5 ms; each wait fails after 20 s).
 */
async function recoveryAfterKill(
  node: TestNode,
  containers: readonly TestContainer[],
  lxcfsPid = node.lxcfsPid(),
): Promise<{ backMs: number; liveMs: number }> {
  const oldDev = fuseDevAt(node.ownMounts(), node.fuseMount);
  const killed = performance.now();
  process.kill(lxcfsPid, 'SIGKILL');
  let dev: string | undefined;
  await waitUntil(
    'a new lxcfs is mounted',
    () => {
      dev = fuseDevAt(node.ownMounts(), node.fuseMount);
      return dev !== undefined && dev !== oldDev;
    },
    { timeoutMs: 20_000, intervalMs: 2 },
  );
  const back = performance.now();
  await waitUntil('every container is on the new lxcfs', () => allOnDev(containers, dev!), {
    timeoutMs: 20_000,
    intervalMs: 5,
  });
  return { backMs: Math.round(back - killed), liveMs: Math.round(performance.now() - back) };
}

function checkNode(
  node: TestNode,
  ...extra: string[]
): Promise<{ code: number; stdout: string; ms: number }> {
  const args = [
    cliPath,
    'check',
    'node',
    ...extra,
    '--lxcfs-root',
    node.anchor,
    '--fuse-mount',
    node.fuseMount,
    '--remount-helper',
    helperPath,
  ];
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (err, stdout) =>
      resolve({ code: err ? Number(err.code) : 0, stdout, ms: Date.now() - started }),
    );
  });
}

/**
 * Runs `script` inside the container, again while a umount in it says busy: the agent reads a new or
 * changed container's files from inside (repair/reads.ts), and umount fails while such a read is open.
 */
async function execInside(c: TestContainer, script: string): Promise<void> {
  let last: { code: number | null; stderr: string } = { code: -1, stderr: '' };
  await waitUntil(
    `${script} inside ${c.spec.name}`,
    async () => {
      last = await c.exec(['sh', '-c', script]);
      if (last.code !== 0 && !/busy/i.test(last.stderr)) return true;
      return last.code === 0;
    },
    { timeoutMs: 5000, intervalMs: 50 },
  );
  assert.equal(last.code, 0, last.stderr);
}

/** Warnings and errors the agent logged about a container. */
function linesAbout(agent: AgentProcess, c: TestContainer, since = 0): LogLine[] {
  return agent.logs
    .slice(since)
    .filter(
      (l) =>
        l.containerId === c.containerId &&
        (l.level === 'warn' || l.level === 'error' || Number(l.level) >= 40),
    );
}

const HOSTILE_NAMESPACES = 7500;

test(`${HOSTILE_NAMESPACES} namespaces made with unshare -Urm inside a container: skipped unread, ordinary containers repaired as fast as without them`, async (t) => {
  const node = scratchNode(t);
  // Namespaces made inside a running container change no mount table and make no cgroup: nothing is
  // notified, and the safety net's sweep finds them (every 2 s here, instead of 5 min).
  const agent = await startReadyAgent(node, ['--full-sweep-interval', '2s']);
  const containers = await workloads(node, 3);
  // Thousands of tasks and mount tables are kernel memory charged to the container: room for them, so
  // what is measured is the agent, not a container thrashing at its memory limit.
  const hog = await node.container({
    name: 'hog',
    files: DEFAULT_FILES,
    memoryBytes: 2 * 1024 ** 3,
    minimal: true,
    tools: { '/ns-hog': await node.staticTool('ns-hog') },
  });
  containers.push(hog);
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) === containers.length,
  );
  const baseline = [];
  for (let cycle = 0; cycle < 3; cycle++)
    baseline.push((await recoveryAfterKill(node, containers)).liveMs);

  const started = Date.now();
  const hogProcess = hog.spawn(['/ns-hog', String(HOSTILE_NAMESPACES)]);
  t.after(() => hogProcess.kill('SIGKILL'));
  let out = '';
  hogProcess.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  hogProcess.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  await waitUntil(
    'the hog made its namespaces',
    () => out.includes(`ready ${HOSTILE_NAMESPACES}`) || hogProcess.exitCode !== null,
    { timeoutMs: 120_000 },
  );
  assert.match(out, new RegExp(`ready ${HOSTILE_NAMESPACES}`), out);
  const madeMs = Date.now() - started;
  const logsBefore = agent.logs.length;
  const skipped = () =>
    agent.metric('lxcfs_webhook_agent_ignored_namespaces', 'reason="user-namespace"');
  await waitUntil('the agent skipped them', async () => (await skipped()) >= HOSTILE_NAMESPACES, {
    timeoutMs: 30_000,
  }).catch(async (err: Error) => {
    const sweeps = agent.logs.filter((l) => l.msg === 'sweep done').slice(-3);
    throw new Error(
      `${err.message}: ${await skipped()} skipped; last sweeps ${JSON.stringify(sweeps)}; last lines ${JSON.stringify(agent.logs.slice(-5))}`,
      { cause: err },
    );
  });
  const sweep = await agent.waitForLog(
    (l) => l.msg === 'sweep done' && l.trigger === 'full',
    10_000,
    agent.logs.length,
  );

  const withHog = [];
  for (let cycle = 0; cycle < 3; cycle++)
    withHog.push((await recoveryAfterKill(node, containers)).liveMs);
  figure(
    t,
    `${HOSTILE_NAMESPACES} user+mount namespaces made inside a container in ${madeMs} ms; a safety-net sweep then: ${sweep.durationMs} ms, ${sweep.mountinfoRead} mountinfo read, ${sweep.otherUserNamespaces} skipped`,
  );
  figure(
    t,
    `new lxcfs mounted → all ${containers.length} containers live: without them ${spread(baseline)}; with them ${spread(withHog)}`,
  );
  figure(
    t,
    `agent state: ${await agent.metric('lxcfs_webhook_agent_state_bytes')} bytes, ${await agent.metric('lxcfs_webhook_agent_state_namespaces')} namespaces`,
  );
  for (const ms of withHog) assert.ok(ms < 5000, `repaired ${ms} ms after the new lxcfs`);
  assert.ok(await readsAll(containers));
  assert.equal(
    await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="failed"'),
    0,
    'no remount was even tried in them',
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_state_namespaces'), containers.length);
  assert.ok((await agent.metric('lxcfs_webhook_agent_state_bytes')) < 20_000);
  const errors = agent.logs
    .slice(logsBefore)
    .filter((l) => l.level === 'error' || Number(l.level) >= 50);
  assert.deepEqual(
    errors.filter((l) => !/lxcfs exited/.test(l.msg)),
    [],
    'no error line about them',
  );
  await agent.waitReady(5000);
});

test('the state filesystem full: repairs go on within the second, /readyz turns red and check node says why; freed, all is well again', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const containers = await workloads(node, 3);
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) === containers.length,
  );
  const stateDir = join(node.anchor, AGENT_STATE_DIR);
  const filler = join(stateDir, 'filler');
  const { bavail, bsize } = statfsSync(stateDir);
  writeFileSync(filler, Buffer.alloc(bavail * bsize));
  assert.throws(() => writeFileSync(join(stateDir, 'more'), 'x'.repeat(8192)), /ENOSPC/);

  const full = [];
  for (let cycle = 0; cycle < 3; cycle++) full.push(await recoveryAfterKill(node, containers));
  figure(
    t,
    `state filesystem full: kill -9 lxcfs → new lxcfs ${spread(full.map((r) => r.backMs))}; → all ${containers.length} containers live ${spread(full.map((r) => r.liveMs))}`,
  );
  for (const { liveMs } of full)
    assert.ok(liveMs < 5000, `repaired ${liveMs} ms after the new lxcfs`);
  assert.ok(await readsAll(containers));

  const ready = await agent.get('/readyz');
  assert.equal(ready.status, 503);
  assert.match(
    ready.body,
    new RegExp(
      `cannot save the agent's state to ${stateDir}/state\\.json \\(ENOSPC: .*\\): repairs go on`,
    ),
  );
  assert.ok(
    (await agent.metric('lxcfs_webhook_agent_state_save_errors_total', 'errno="ENOSPC"')) >= 1,
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_state_saved'), 0);
  const checked = await checkNode(node);
  assert.equal(checked.code, 1, checked.stdout);
  assert.match(
    checked.stdout,
    new RegExp(
      `^  - the agent's state filesystem ${stateDir} is full \\(0 KiB free of 4096 KiB`,
      'm',
    ),
  );
  assert.equal(
    agent.logs.filter((l) => /cannot save the agent's state/.test(l.msg)).length,
    1,
    'logged once, not at every sweep',
  );

  rmSync(filler);
  const freed = Date.now();
  await agent.waitReady(10_000);
  figure(t, `/readyz green again ${Date.now() - freed} ms after the space was freed`);
  assert.equal(await agent.metric('lxcfs_webhook_agent_state_saved'), 1);
  const after = await checkNode(node);
  assert.equal(after.code, 0, after.stdout);
});

test('hostile targets (symlink, FIFO, directory, a file bound over it, a tmpfs file): one log line each, never stacked, no retry sweep, the agent stays ready', async (t) => {
  const node = scratchNode(t);
  // Sweeps that look at everything, every second: none of them may log about a target left alone again.
  const agent = await startReadyAgent(node, ['--full-sweep-interval', '1s']);
  const ordinary = await workloads(node, 2);
  const victim = join(node.dir, 'victim');
  writeFileSync(victim, 'not lxcfs\n');
  const setups: Record<string, string> = {
    symlink: `mount -t tmpfs t /proc && ln -s ${victim} /proc/meminfo`,
    fifo: 'mount -t tmpfs t /proc && mkfifo /proc/meminfo',
    directory: 'mount -t tmpfs t /proc && mkdir /proc/meminfo',
    'tmpfs-file': 'mount -t tmpfs t /proc && echo fake > /proc/meminfo',
    rebound: `umount /proc/meminfo && mount --bind ${victim} /proc/meminfo`,
    'cpu-symlink': `mkdir -p ${node.dir}/cpu && echo 0 > ${node.dir}/cpu/online && mount -t tmpfs t /sys/devices/system && ln -s ${node.dir}/cpu /sys/devices/system/cpu`,
  };
  const hostile = await Promise.all(
    Object.keys(setups).map((name) => node.container({ name, ...withLxcfs })),
  );
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) ===
      ordinary.length + hostile.length,
  );
  for (const c of hostile) await execInside(c, setups[c.spec.name]!);
  const depths = hostile.map(targetDepths);
  const logsBefore = agent.logs.length;
  const sweepsFrom = async (n: number) => {
    const sweeps = await agent.metric('lxcfs_webhook_agent_sweeps_total');
    await waitUntil(
      `${n} more sweeps`,
      async () => (await agent.metric('lxcfs_webhook_agent_sweeps_total')) >= sweeps + n,
      { timeoutMs: 30_000 },
    );
  };
  const count = () => hostile.map((c) => linesAbout(agent, c, logsBefore).length);

  // An lxcfs restart: every hidden file is stale now, and every one is left alone with a line.
  const recoveries = [(await recoveryAfterKill(node, ordinary)).liveMs];
  await sweepsFrom(3);
  const afterRestart = count();
  // Sweeps with nothing new: not a line more.
  await sweepsFrom(10);
  const afterSweeps = count();
  // Another restart: real repairs log again (the files that are ours), refusals do not.
  recoveries.push((await recoveryAfterKill(node, ordinary)).liveMs);
  await sweepsFrom(3);
  const refused = await agent.metric('lxcfs_webhook_agent_refused_targets');
  const perContainer = hostile.map((c) => linesAbout(agent, c, logsBefore));
  const refusalsOf = (lines: LogLine[]) => lines.filter((l) => /left alone/.test(l.msg));
  const lines = perContainer.reduce((n, l) => n + l.length, 0);
  figure(
    t,
    `${hostile.length} hostile containers, ${refused} targets left alone: warning lines after an lxcfs restart ${afterRestart.join('+')}, after 10 more sweeps ${afterSweeps.join('+')}, after another restart ${lines} in all, of which ${perContainer.reduce((n, l) => n + refusalsOf(l).length, 0)} refusals`,
  );
  figure(t, `ordinary containers live after the new lxcfs: ${spread(recoveries)}`);
  assert.deepEqual(afterSweeps, afterRestart, 'sweeps cost no line');
  assert.equal(
    await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="retry"'),
    0,
    'a target left alone asks for no retry sweep',
  );
  for (const [i, c] of hostile.entries()) {
    const refusals = refusalsOf(perContainer[i]!);
    const targets = refusals.map((l) => String(l.target));
    assert.ok(refusals.length > 0, `${c.spec.name}: refused`);
    assert.equal(
      new Set(targets).size,
      targets.length,
      `${c.spec.name}: one line per target left alone: ${JSON.stringify(refusals)}`,
    );
  }
  assert.ok(refused >= hostile.length);
  assert.deepEqual(hostile.map(targetDepths), depths, 'nothing stacked on any of them');
  assert.equal(readFileSync(victim, 'utf8'), 'not lxcfs\n');
  assert.ok(await readsAll(ordinary));
  assert.equal(
    await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="failed"'),
    0,
    'a refusal is not a failure',
  );
  await agent.waitReady(5000);
});

test('a second agent on the same anchor refuses, naming the first, and leaves it working', async (t) => {
  const node = scratchNode(t);
  const first = await startReadyAgent(node);
  const containers = await workloads(node, 3);
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await first.metric('lxcfs_webhook_agent_containers_covered')) === containers.length,
  );
  const lxcfs = node.lxcfsPid();
  const anchorMounts = () =>
    JSON.stringify(
      mountsAtOrBelow(node.ownMounts(), node.anchor).map((m) => [m.mountPoint, m.dev, m.mountId]),
    );
  const before = anchorMounts();

  const refusals = [];
  for (const extra of [[], ['--fuse-mount', join(node.dir, 'run2', 'fuse')]]) {
    const started = Date.now();
    const second = node.spawnAgent(extra);
    const exit = await second.exited;
    refusals.push(Date.now() - started);
    assert.equal(exit.code, 2, second.stderr);
    assert.match(
      second.stderr.trim(),
      new RegExp(
        `^lxcfs-webhook agent: --lxcfs-root: another lxcfs-webhook agent \\(pid ${first.child.pid}: .*agent.*\\) holds the anchor ${node.anchor}: run one agent per node and anchor .*\\[E_AGENT\\]$`,
      ),
    );
  }
  figure(t, `second agents refused in ${refusals.join(' and ')} ms (same FUSE mount, another one)`);
  assert.equal(node.lxcfsPid(), lxcfs, "the first agent's lxcfs was not touched");
  assert.equal(anchorMounts(), before, 'nor its anchor mounts');
  assert.equal(await first.metric('lxcfs_webhook_agent_lxcfs_restarts_total'), 0);
  assert.ok(await readsAll(containers));
  await first.waitReady(1000);
  const { liveMs } = await recoveryAfterKill(node, containers);
  figure(
    t,
    `and the first one still repairs: all containers live ${liveMs} ms after its new lxcfs`,
  );
});

test('an lxcfs that does not exit after SIGKILL: its FUSE connection is aborted (readers stuck on it return) and another lxcfs takes its place', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node, ['--hang-grace', '1s']);
  const containers = await workloads(node, 3);
  await waitUntil(
    'the agent covers every container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_containers_covered')) === containers.length,
  );
  await sleep(ENTRY_TIMEOUT_MS);
  // A cgroup v1 freezer holds the process in D state through SIGKILL, as a thread stuck in a FUSE request does.
  const freezer = `/sys/fs/cgroup/freezer/${basename(node.dir)}`;
  mkdirSync(freezer);
  const stuck = node.lxcfsPid();
  const thaw = async () => {
    writeFileSync(join(freezer, 'freezer.state'), 'THAWED');
    await waitUntil(
      'the left-behind lxcfs is gone',
      () => readFileSync(join(freezer, 'cgroup.procs'), 'utf8').trim() === '',
      { timeoutMs: 10_000 },
    );
    rmdirSync(freezer);
  };
  try {
    writeFileSync(join(freezer, 'cgroup.procs'), String(stuck));
    const frozenAt = Date.now();
    writeFileSync(join(freezer, 'freezer.state'), 'FROZEN');
    const reader = containers[0]!.read('/proc/meminfo', 30_000);
    const aborted = await agent.waitForLog(
      (l) => /aborting its FUSE connection/.test(l.msg),
      15_000,
    );
    const readerDone = await reader;
    const readerMs = Date.now() - frozenAt;
    await agent.waitForLog((l) => /left behind, another one takes its place/.test(l.msg), 10_000);
    const recovered = await recoveryMs(containers, frozenAt);
    figure(
      t,
      `lxcfs frozen: killed after the 1 s grace, connection aborted ${Date.parse(String(aborted.time)) - frozenAt} ms after the freeze; a reader stuck on it returned after ${readerMs} ms (${readerDone.stderr.trim()}); every container reads again ${recovered} ms after the freeze`,
    );
    assert.match(
      readerDone.stderr,
      /Software caused connection abort|Transport endpoint is not connected/,
    );
    assert.ok(readerMs < 15_000);
    assert.equal(await agent.metric('lxcfs_webhook_agent_fuse_connection_aborts_total'), 1);
    assert.ok(
      /D|T/.test(readFileSync(`/proc/${stuck}/stat`, 'utf8').split(') ')[1]!.slice(0, 1)),
      'the old one is still there',
    );
    assert.ok((await Promise.all(containers.map(readsLimits))).every(Boolean));
    await agent.waitReady(10_000);
  } finally {
    await thaw();
  }
  await agent.waitForLog((l) => l.msg === 'an lxcfs left behind has exited', 10_000);
  assert.equal(node.lxcfsPid() !== stuck, true);
});

test('a mount watcher that stops answering (SIGSTOP) is noticed: a lost file comes back within seconds, and the watcher is replaced', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  await waitUntil(
    'the container is watched',
    async () => (await agent.metric('lxcfs_webhook_agent_mount_namespaces_watched')) >= 1,
  );
  await waitRemembered(node, c);
  const watcher = agent.logs.filter((l) => l.msg === 'mount watcher started').at(-1)!.pid as number;
  process.kill(watcher, 'SIGSTOP');
  const logsBefore = agent.logs.length;
  await execInside(c, 'umount /proc/meminfo');
  const lostAt = Date.now();
  await waitUntil('the file is back', async () => readsLimits(c), { timeoutMs: 20_000 });
  const backMs = Date.now() - lostAt;
  await agent.waitForLog(
    (l) => l.msg === 'mount watcher stopped answering: killing it',
    1000,
    logsBefore,
  );
  // A quiet node has no sweep that would ping it: the agent's own ping noticed it, and only then was
  // the file repaired (no notification came from the stopped watcher).
  const indexOf = (msg: string) =>
    agent.logs.findIndex(
      (l, i) =>
        i >= logsBefore &&
        l.msg === msg &&
        (msg !== 'remounted' || l.containerId === c.containerId),
    );
  assert.ok(
    indexOf('mount watcher stopped answering: killing it') < indexOf('remounted'),
    'repaired after the stopped watcher was noticed',
  );
  await agent.waitForLog((l) => l.msg === 'mount notifications back', 15_000, logsBefore);
  const replaced = agent.logs.filter((l) => l.msg === 'mount watcher started').at(-1)!
    .pid as number;
  figure(
    t,
    `watcher stopped: the lost file was back after ${backMs} ms (the watcher pinged every 1 s)`,
  );
  assert.notEqual(replaced, watcher);
  assert.ok(backMs < 10_000);
});

test('check node --all reads inside every container: the one broken container among 41 is found every time', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const containers = await Promise.all(
    Array.from({ length: 41 }, (_, i) => node.container({ name: `c${i}`, ...withLxcfs })),
  );
  await waitUntil(
    'the agent covers every container',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 41,
  );
  // Its files are still mounted (mountinfo says live), but a FIFO on a tmpfs over /proc answers instead.
  const broken = containers[17]!;
  assert.equal(
    (await broken.exec(['sh', '-c', 'mount -t tmpfs t /proc && mkfifo /proc/meminfo'])).code,
    0,
  );
  const runs = 5;
  const all = [];
  const sampled = [];
  for (let run = 0; run < runs; run++) {
    all.push(await checkNode(node, '--all'));
    sampled.push(await checkNode(node));
  }
  const found = (r: { stdout: string }) =>
    r.stdout.includes(`pod ${broken.podUid} container ${broken.containerId.slice(0, 12)}`);
  figure(
    t,
    `41 containers, 1 broken: check node --all found it in ${all.filter(found).length} of ${runs} runs (${spread(all.map((r) => r.ms))}); the sample of 10 in ${sampled.filter(found).length} of ${runs}`,
  );
  for (const r of all) {
    assert.equal(r.code, 1, r.stdout);
    assert.ok(found(r), r.stdout);
    assert.match(r.stdout, /^reads       \d+ files read inside 41 containers, [1-9]\d* failed$/m);
  }
  for (const r of sampled)
    assert.match(
      r.stdout,
      /^reads       \d+ files read inside 10 sampled containers, \d+ failed$/m,
    );
});
