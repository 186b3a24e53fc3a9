// Fault injection against the real agent, lxcfs and containers: what an attack run did, bounded in
// time, each test printing its figures ("# figure: ..." in the TAP output). Recovery means every
// injected file reads without an error in every container again, and the limits are right.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_FILES } from '../../src/config/defaults.js';
import type { TestContainer } from '../helpers/container.js';
import {
  readsLimits,
  scratchNode,
  startReadyAgent,
  statOutcome,
  targetDepths,
  waitAllHealthy,
  withLxcfs,
  type TestNode,
} from '../helpers/node.js';
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
    recoveries.push(await recoveryMs(containers, killedAt));
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
