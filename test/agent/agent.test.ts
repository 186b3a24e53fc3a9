// End to end: the real agent process (`lxcfs-webhook agent`), real lxcfs, real containers (mount + pid
// namespaces, memory/cpu cgroups). Each test gets its own scratch node and cleans it up.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { findLxcfsServing } from '../../src/agent/lxcfs/process.js';
import { mountsAtOrBelow, parseMountinfo } from '../../src/agent/host/mountinfo.js';
import { AGENT_STATE_DIR, AGENT_STATE_FILE, DEFAULT_FILES } from '../../src/config/defaults.js';
import type { TestContainer } from '../helpers/container.js';
import {
  EXPECTED_MEMTOTAL,
  helperPath,
  LIMITS,
  scratchNode,
  startReadyAgent,
  statOutcome,
  targetDepths,
  waitAllHealthy,
  waitRemembered,
  withLxcfs,
} from '../helpers/node.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The container's mounts, without the kernel's `//deleted` mark: a lookup through a dead lxcfs (any
 * process's, e.g. the probe's) marks dropped dentries in every namespace, which is not a mount change.
 */
function mountTable(c: TestContainer) {
  return parseMountinfo(c.mountinfo()).map(({ rootDeleted: _, ...mount }) => mount);
}

/**
 * Unmounts `target` inside the container. The agent reads a new or changed container's files from inside
 * (repair/reads.ts); while one is open, umount says busy: try again until that read is over.
 */
async function unmountInside(c: TestContainer, target: string): Promise<void> {
  await waitUntil(
    `${target} unmounted inside ${c.spec.name}`,
    async () => (await c.exec(['umount', target])).code === 0,
    { timeoutMs: 5000, intervalMs: 50 },
  );
}

test('containers see their limits in free, /proc/meminfo, /proc/cpuinfo and cpu/online', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const limited = await node.container({ name: 'limited', ...withLxcfs });
  const bare = await node.container({ name: 'bare', ...LIMITS });

  const free = await limited.exec(['free', '-m']);
  assert.match(free.stdout, /^Mem:\s+256\s/m);
  assert.ok((await limited.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL));
  assert.equal((await limited.read('/proc/cpuinfo')).stdout.match(/^processor/gm)?.length, 1);
  assert.equal((await limited.read('/sys/devices/system/cpu/online')).stdout, '0\n');
  // without lxcfs files, the node's values
  assert.doesNotMatch((await bare.exec(['free', '-m'])).stdout, /^Mem:\s+256\s/m);

  await waitUntil(
    'the agent counts the container as covered',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 1,
  );
  await waitUntil(
    'the agent has read the files inside the container',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_files_read_total', 'result="ok"')) >=
      DEFAULT_FILES.length,
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_unreadable_files'), 0);
  assert.equal(await agent.metric('lxcfs_webhook_agent_lxcfs_up'), 1);
  assert.equal((await agent.get('/livez')).status, 200);
});

test('after kill -9 of lxcfs every container reads correct values again; others are untouched', async (t) => {
  const node = scratchNode(t);
  // Safety-net sweeps every second: another lxcfs' death changes no mount table, so only they look again.
  const agent = await startReadyAgent(node, ['--full-sweep-interval', '1s']);
  const foreign = await node.startForeignLxcfs();
  const plain = await node.container({
    name: 'plain',
    ...withLxcfs,
    readOnlyFiles: ['/proc/cpuinfo'],
  });
  const minimal = await node.container({ name: 'minimal', ...withLxcfs, minimal: true });
  const holder = await node.container({ name: 'holder', ...withLxcfs, holdOpen: '/proc/meminfo' });
  const bare = await node.container({ name: 'bare', ...LIMITS });
  const other = await node.container({ name: 'foreign', ...withLxcfs, source: foreign.mount });
  const injected = [plain, minimal, holder];
  const depthsBefore = targetDepths(plain);
  const untouched = { bare: mountTable(bare), other: mountTable(other) };
  assert.equal(
    (await minimal.exec(['mount', '--version'])).code,
    127,
    'the minimal image has no mount binary',
  );
  const logsBefore = agent.logs.length;

  process.kill(node.lxcfsPid(), 'SIGKILL');
  await waitAllHealthy(injected);

  const broken = await agent.waitForLog(
    (l) => l.msg === 'broken lxcfs mounts' && l.containerId === plain.containerId,
    1000,
    logsBefore,
  );
  assert.deepEqual(
    [broken.podUid, broken.stale, broken.missing],
    [plain.podUid, [...DEFAULT_FILES].sort(), []],
  );
  const remounted = await agent.waitForLog(
    (l) => l.msg === 'remounted' && l.containerId === minimal.containerId,
    1000,
    logsBefore,
  );
  assert.deepEqual(
    [remounted.how, (remounted.targets as string[]).length],
    ['beneath', DEFAULT_FILES.length],
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_lxcfs_restarts_total'), 1);
  assert.equal(
    await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="done"'),
    injected.length * DEFAULT_FILES.length,
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="failed"'), 0);

  assert.deepEqual(targetDepths(plain), depthsBefore, 'dead mounts are replaced, not stacked');
  assert.notEqual(
    (await plain.exec(['sh', '-c', 'echo x > /proc/cpuinfo'])).code,
    0,
    'read-only kept',
  );
  assert.match((await plain.exec(['free', '-m'])).stdout, /^Mem:\s+256\s/m);

  // The holder's own descriptor stays dead: reported, not fixable by a remount.
  await waitUntil(
    'the holder is reported',
    async () => (await agent.metric('lxcfs_webhook_agent_dead_descriptor_processes')) === 1,
  );
  const report = await agent.waitForLog((l) => l.holderPid === holder.pid, 1000, logsBefore);
  assert.equal(report.containerId, holder.containerId);

  // Another lxcfs' mounts are not ours, not even once it is dead.
  foreign.process.kill('SIGKILL');
  const sweeps = await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="full"');
  await waitUntil(
    'two more sweeps that read every table',
    async () =>
      (await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="full"')) >= sweeps + 2,
  );
  assert.deepEqual(mountTable(bare), untouched.bare);
  assert.deepEqual(mountTable(other), untouched.other);
  assert.match((await other.read('/proc/meminfo')).stderr, /Transport endpoint is not connected/);
});

test('files looked up while lxcfs is dead (the kernel drops their dentries) are repaired in every container', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const containers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => node.container({ name: `c${i}`, ...withLxcfs })),
  );
  await waitUntil(
    'the agent has seen every container',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 20,
  );
  // A lookup revalidates a FUSE dentry only after lxcfs' 1 s entry timeout, as for any pod older than that.
  await sleep(1100);

  process.kill(node.lxcfsPid(), 'SIGKILL');
  await sleep(20);
  // What the kubelet or runc do when a pod starts in that window: look the anchor's files up.
  const lookups = DEFAULT_FILES.map((file) => statOutcome(join(node.anchor, file)));
  assert.ok(
    lookups.some((outcome) => outcome === 'ENOTCONN'),
    `lookups in the dead window: ${lookups.join(', ')}`,
  );
  assert.ok(
    containers[0]!.mountinfo().includes('//deleted'),
    'the kernel marked the container mounts deleted',
  );

  await waitUntil(
    'every container reads every file again',
    async () =>
      (await Promise.all(containers.map((c) => c.readsEvery(DEFAULT_FILES)))).every(Boolean),
    { timeoutMs: 20_000 },
  );
  await waitAllHealthy(containers);
});

test('after SIGTERM of lxcfs (it unmounts itself) containers recover', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  process.kill(node.lxcfsPid(), 'SIGTERM');
  await waitAllHealthy([c]);
  assert.equal(await agent.metric('lxcfs_webhook_agent_lxcfs_restarts_total'), 1);
});

test('the code pages start-up and a recovery touched are given back once quiet; the agent runs on as before', async (t) => {
  const node = scratchNode(t);
  node.useOwnNodeBinary(); // as in its pod: pages another process maps stay where they are
  const agent = await startReadyAgent(node);
  const limited = await node.container({ name: 'limited', ...withLxcfs });
  const afterStart = await agent.waitForLog((l) => l.msg === 'code pages given back');
  assert.ok(Number(afterStart.advisedMiB) > 20, JSON.stringify(afterStart));
  assert.ok(
    Number(afterStart.rssBeforeMiB) - Number(afterStart.rssAfterMiB) > 10,
    `RSS ${String(afterStart.rssBeforeMiB)} → ${String(afterStart.rssAfterMiB)} MiB: expected at least 10 MiB given back`,
  );
  // What was paged out is read back from the file when needed: a recovery works as before, and its
  // own burst is followed by a page-out.
  const logsBefore = agent.logs.length;
  process.kill(node.lxcfsPid(), 'SIGKILL');
  await waitAllHealthy([limited]);
  assert.match((await limited.exec(['free', '-m'])).stdout, /^Mem:\s+256\s/m);
  await agent.waitForLog((l) => l.msg === 'code pages given back', 15_000, logsBefore);
  assert.equal((await agent.get('/readyz')).status, 200);
});

test('a hung lxcfs (SIGSTOP) never blocks the agent: it is killed after the grace period and containers recover', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  const hung = node.lxcfsPid();
  process.kill(hung, 'SIGSTOP');
  await waitUntil(
    'the probe fails',
    async () => (await agent.metric('lxcfs_webhook_agent_lxcfs_up')) === 0,
    { timeoutMs: 3000 },
  );
  await waitUntil(
    'the agent reports not ready',
    async () => (await agent.get('/readyz')).status === 503,
    { timeoutMs: 3000 },
  );
  const started = Date.now();
  assert.equal((await agent.get('/livez')).status, 200);
  assert.ok(Date.now() - started < 500, 'the agent answers while lxcfs hangs');
  await agent.waitForLog((l) => l.msg === 'lxcfs is hung: killing it to restart it', 5000);
  await waitAllHealthy([c]);
  assert.notEqual(node.lxcfsPid(), hung);
  await agent.waitReady(5000);
});

test('the agent killed (with or without its lxcfs) and restarted over dead mounts repairs containers', async (t) => {
  const node = scratchNode(t);
  const first = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  const minimal = await node.container({ name: 'minimal', ...withLxcfs, minimal: true });

  // as a container runtime kills a DaemonSet pod: every process of it
  const lxcfs = node.lxcfsPid();
  first.kill('SIGKILL');
  process.kill(lxcfs, 'SIGKILL');
  await first.exited;
  await waitUntil('the container sees the dead mount', async () =>
    /not connected/.test((await c.read('/proc/meminfo')).stderr),
  );
  const second = await startReadyAgent(node);
  await waitAllHealthy([c, minimal]);

  // the agent alone dies; its lxcfs lives on, orphaned, holding the pidfile
  const orphan = node.lxcfsPid();
  second.kill('SIGKILL');
  await second.exited;
  const third = await startReadyAgent(node);
  await third.waitForLog((l) => l.msg === 'killing lxcfs left behind by an earlier agent');
  await waitAllHealthy([c, minimal]);
  assert.notEqual(node.lxcfsPid(), orphan);
});

test('a target that went missing is mounted again at the next sweep', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  await waitRemembered(node, c);

  await unmountInside(c, '/proc/meminfo');
  assert.ok(
    !(await c.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL),
    "the node's values show through",
  );
  await waitAllHealthy([c]);
  const broken = await agent.waitForLog((l) => l.msg === 'broken lxcfs mounts', 1000);
  assert.deepEqual(
    [broken.missing, broken.stale, broken.containerId],
    [['/proc/meminfo'], [], c.containerId],
  );
});

test('a remount that failed is retried a sweep interval later, though no notification comes', async (t) => {
  const node = scratchNode(t);
  // The helper's first remount does nothing and fails: no mount table changes, so nothing is notified.
  const failing = join(node.dir, 'failing-helper.sh');
  const failed = join(node.dir, 'failed-once');
  writeFileSync(
    failing,
    `#!/bin/sh\nif [ "$1" = swap ] && [ ! -e '${failed}' ]; then : > '${failed}'; exit 1; fi\nexec '${helperPath}' "$@"\n`,
    { mode: 0o755 },
  );
  const agent = await startReadyAgent(node, ['--remount-helper', failing]);
  const c = await node.container({ name: 'c', ...withLxcfs });
  await waitRemembered(node, c);

  const since = agent.logs.length;
  await unmountInside(c, '/proc/meminfo');
  await agent.waitForLog(
    (l) => l.msg === 'remount failed; retried a sweep interval later, then after a backoff',
    5000,
    since,
  );
  // A retry sweep a sweep interval (1 s here) later. On a shared machine a change sweep caused by other
  // work may repair it first; the retry runs all the same. The safety net is 5 minutes away.
  await waitUntil(
    'a retry sweep',
    async () => (await agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="retry"')) >= 1,
    { timeoutMs: 5000 },
  );
  await waitAllHealthy([c]);
  assert.equal(await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="done"'), 1);
});

test('with notifications the agent sweeps when something changed: a target gone missing, a new container born stale, an exit; it polls only without a watcher', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  // Two mounts of the first lxcfs stacked on one target: the lower one outlives the repair below and
  // keeps that connection known, as a dead mount of ours, for the container started after it.
  const stacked = await node.container({ name: 'stacked', ...withLxcfs });
  assert.equal((await stacked.exec(['mount', '--bind', '/proc/meminfo', '/proc/meminfo'])).code, 0);
  const keep = join(node.dir, 'keep');
  mkdirSync(join(keep, 'proc'), { recursive: true });
  writeFileSync(join(keep, 'proc', 'meminfo'), '');
  await promisify(execFile)(helperPath, [
    'bind',
    join(node.anchor, 'proc', 'meminfo'),
    join(keep, 'proc', 'meminfo'),
  ]);
  await waitUntil(
    'both namespaces watched',
    async () => (await agent.metric('lxcfs_webhook_agent_mount_namespaces_watched')) >= 2,
  );
  await agent.waitForLog((l) => l.msg === 'every cgroup watched');

  // Nothing changes: no poll runs (the test node's --sweep-interval is 1 s).
  const polls = () => agent.metric('lxcfs_webhook_agent_sweeps_total', 'trigger="poll"');
  const pollsBefore = await polls();
  await sleep(3000);
  assert.equal(await polls(), pollsBefore, 'no poll while notifications are complete');

  // A target unmounted inside a running container: its namespace reports the change.
  let since = agent.logs.length;
  await unmountInside(c, '/proc/meminfo');
  await waitAllHealthy([c]);
  const missing = await agent.waitForLog(
    (l) => l.msg === 'sweep done' && l.missing === 1,
    1000,
    since,
  );
  // It read the changed table, and more only when other namespaces on this shared machine were new or
  // changed meanwhile (the agent sees the whole host; the bench and read-plan tests count reads exactly).
  assert.equal(missing.trigger, 'change');
  assert.ok((missing.mountinfoRead as number) >= 1, JSON.stringify(missing));

  // A container started after the last sweep, its file already on a dead lxcfs: its new cgroup is
  // reported, and the sweeps after it find the namespace.
  process.kill(node.lxcfsPid(), 'SIGKILL');
  await agent.waitForLog(
    (l) => l.msg === 'sweep done' && l.trigger === 'lxcfs-restart',
    10_000,
    since,
  );
  await waitAllHealthy([c, stacked]);
  since = agent.logs.length;
  const filesRead = () => agent.metric('lxcfs_webhook_agent_files_read_total', 'result="ok"');
  const readBefore = await filesRead();
  const late = await node.container({
    name: 'late',
    ...LIMITS,
    source: keep,
    files: ['/proc/meminfo'],
  });
  await waitUntil('the late container reads its limits', async () =>
    (await late.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL),
  );
  const stale = await agent.waitForLog((l) => l.msg === 'sweep done' && l.stale === 1, 1000, since);
  assert.equal(stale.trigger, 'change');
  // A new container, and a repaired one: read inside (the sweep after the remount asks for it).
  await waitUntil(
    'the repaired container read inside',
    async () => (await filesRead()) > readBefore,
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_unreadable_files'), 0);

  // Its exit is reported (the watch's pidfd): a sweep drops it.
  await waitUntil(
    'three containers covered',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 3,
  );
  since = agent.logs.length;
  await late.destroy();
  await waitUntil(
    'two containers covered',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 2,
  );
  assert.ok(agent.logs.slice(since).some((l) => l.msg === 'sweep done' && l.trigger === 'change'));

  // The mount watcher killed: the agent polls, every poll reads every table, and still repairs.
  const watcher = agent.logs.filter((l) => l.msg === 'mount watcher started').at(-1)!.pid as number;
  since = agent.logs.length;
  const pollsWithWatcher = await polls();
  process.kill(watcher, 'SIGKILL');
  await agent.waitForLog(
    (l) =>
      l.msg ===
      'mount notifications stopped: every sweep reads every mount table until the watcher is back',
    5000,
    since,
  );
  const killed = since;
  // The first poll comes at once; the watcher is back a second later (sooner, when a change sweep
  // restarts it), and then the polls stop again.
  await waitUntil('a poll', async () => (await polls()) > pollsWithWatcher);
  since = agent.logs.length;
  await unmountInside(c, '/proc/meminfo');
  await waitAllHealthy([c]);
  const fallback = await agent.waitForLog(
    (l) => l.msg === 'sweep done' && l.missing === 1,
    1000,
    since,
  );
  assert.ok(
    (fallback.mountinfoRead as number) >= 2,
    `read every table: ${JSON.stringify(fallback)}`,
  );
  await agent.waitForLog((l) => l.msg === 'mount notifications back', 10_000, killed);

  // The cgroup watcher killed: polls until a new one watches every cgroup again.
  const cgroupWatcher = agent.logs.filter((l) => l.msg === 'cgroup watcher started').at(-1)!
    .pid as number;
  since = agent.logs.length;
  const pollsBeforeKill = await polls();
  process.kill(cgroupWatcher, 'SIGKILL');
  await agent.waitForLog((l) => l.msg === 'cgroup notifications back', 10_000, since);
  assert.ok(
    agent.logs
      .slice(since)
      .some((l) => l.msg.startsWith('cgroup notifications stopped: the agent polls')),
  );
  assert.ok((await polls()) > pollsBeforeKill, 'polled while the cgroup watcher was down');
});

test('SIGTERM stops lxcfs and clears its mounts, keeps the anchor; a new agent takes over', async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const c = await node.container({ name: 'c', ...withLxcfs });
  await waitUntil(
    'the agent has seen the container',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 1,
  );

  agent.kill('SIGTERM');
  assert.deepEqual(await agent.exited, { code: 0, signal: null });
  assert.deepEqual(findLxcfsServing('/proc', node.fuseMount), []);
  const left = [node.fuseMount, join(node.anchor, 'proc'), join(node.anchor, 'sys')].flatMap((p) =>
    mountsAtOrBelow(node.ownMounts(), p),
  );
  assert.deepEqual(left, []);
  assert.equal(node.ownMounts().find((m) => m.mountPoint === node.anchor)?.fsType, 'tmpfs');
  // the state on a tmpfs of its own, which cannot fill the anchor
  assert.equal(
    node.ownMounts().find((m) => m.mountPoint === join(node.anchor, AGENT_STATE_DIR))?.fsType,
    'tmpfs',
  );
  assert.ok(existsSync(join(node.anchor, AGENT_STATE_DIR, AGENT_STATE_FILE)));

  await startReadyAgent(node);
  await waitAllHealthy([c]);
});

test('known fatal errors at start: one line naming the fix, exit code 2', async (t) => {
  const node = scratchNode(t);
  const expectFatal = async (args: string[], pattern: RegExp) => {
    const agent = node.spawnAgent(args);
    const exit = await agent.exited;
    assert.equal(exit.code, 2, agent.stderr);
    const lines = agent.stderr.trim().split('\n');
    assert.equal(lines.length, 1, agent.stderr);
    assert.match(lines[0]!, pattern);
    assert.match(lines[0]!, /\[E_AGENT\]$/);
  };

  await expectFatal(
    ['--lxcfs-bin', '/nonexistent/lxcfs'],
    /^lxcfs-webhook agent: --lxcfs-bin: lxcfs binary "\/nonexistent\/lxcfs" not found: install lxcfs/,
  );

  const fileInTheWay = join(node.dir, 'a-file');
  writeFileSync(fileInTheWay, '');
  await expectFatal(
    ['--fuse-mount', join(fileInTheWay, 'fuse')],
    /--fuse-mount: the FUSE mountpoint .* is unusable \(ENOTDIR\): give the agent a directory it can create/,
  );

  // another lxcfs holding the pidfile next to the agent's FUSE mountpoint
  mkdirSync(join(node.dir, 'elsewhere'));
  mkdirSync(join(node.dir, 'run'), { recursive: true });
  const holder = spawn(
    'lxcfs',
    ['-f', '-p', join(node.dir, 'run', 'lxcfs.pid'), join(node.dir, 'elsewhere')],
    { stdio: 'ignore' },
  );
  t.after(() => holder.kill('SIGKILL'));
  await waitUntil(
    'the other lxcfs mounted',
    () => node.ownMounts().some((m) => m.mountPoint === join(node.dir, 'elsewhere')),
    { timeoutMs: 5000 },
  );
  await expectFatal([], /--fuse-mount: another lxcfs holds the pidfile .*lxcfs\.pid: stop it/);
});
