import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { bindIntoAnchor, clearLxcfsMounts } from '../../../src/agent/lxcfs/anchor.js';
import { classifyTargets } from '../../../src/agent/repair/classify.js';
import { startLxcfs, type RunningLxcfs } from '../../../src/agent/lxcfs/process.js';
import { parseMountinfo } from '../../../src/agent/host/mountinfo.js';
import { remount, type RemountOptions } from '../../../src/agent/repair/remount.js';
import { ALLOWED_FILES, DEFAULT_FILES } from '../../../src/config/defaults.js';
import type { TestContainer } from '../../helpers/container.js';
import {
  chosenProcess,
  EXPECTED_MEMTOTAL,
  helperPath,
  LIMITS,
  TestNode,
} from '../../helpers/node.js';
import { join } from 'node:path';

const node = new TestNode();
const log = pino({ level: 'silent' });
let lxcfs: RunningLxcfs;
const knownDevs = new Set<string>();

before(async () => {
  lxcfs = await node.lxcfsWithAnchor();
  knownDevs.add(lxcfs.dev);
});
after(() => node.cleanup());

/** Kills lxcfs and starts a new one (new FUSE connection): every container bind of the old one is dead. */
async function restartLxcfs(): Promise<void> {
  lxcfs.kill('SIGKILL');
  await lxcfs.exited;
  await clearLxcfsMounts(node.layout, log);
  lxcfs = await startLxcfs(
    {
      bin: 'lxcfs',
      args: ['--enable-cfs'],
      fuseMount: node.fuseMount,
      pidfile: join(node.dir, 'run', 'lxcfs.pid'),
    },
    log,
    5000,
  );
  knownDevs.add(lxcfs.dev);
  await bindIntoAnchor(node.layout);
}

function statusesOf(c: TestContainer, remembered = {}) {
  return classifyTargets({
    mounts: parseMountinfo(c.mountinfo()),
    liveDev: lxcfs.dev,
    knownDevs,
    remembered,
    files: ALLOWED_FILES,
  });
}

function options(): RemountOptions {
  return {
    helper: helperPath,
    proc: '/proc',
    fuseMount: node.fuseMount,
    liveDev: lxcfs.dev,
    parallelism: 2,
    batchSize: 25,
    timeoutMs: 5000,
  };
}

async function repair(containers: TestContainer[]) {
  const plans = containers.map((c) => ({
    ...chosenProcess(c.pid),
    targets: statusesOf(c).filter((s) => s.state !== 'live'),
  }));
  return remount(plans, options());
}

/** How many mounts are stacked at `path` in the container: a remount must not pile them up. */
function depth(c: TestContainer, path: string): number {
  return parseMountinfo(c.mountinfo()).filter((m) => m.mountPoint === path).length;
}

test('swaps dead mounts for live ones in running containers (MOVE_MOUNT_BENEATH), read-only kept, nothing stacked', async () => {
  const plain = await node.container({
    name: 'plain',
    ...LIMITS,
    files: DEFAULT_FILES,
    readOnlyFiles: ['/proc/cpuinfo'],
  });
  const minimal = await node.container({
    name: 'minimal',
    ...LIMITS,
    files: DEFAULT_FILES,
    minimal: true,
  });
  const depthBefore = depth(plain, '/proc/meminfo');
  await restartLxcfs();
  for (const c of [plain, minimal]) {
    assert.match((await c.read('/proc/meminfo')).stderr, /Transport endpoint is not connected/);
    assert.equal(statusesOf(c).filter((s) => s.state === 'stale').length, DEFAULT_FILES.length);
  }

  const outcomes = await repair([plain, minimal]);
  assert.equal(outcomes.length, 2 * DEFAULT_FILES.length);
  for (const o of outcomes)
    assert.deepEqual(
      { ok: o.ok, how: o.how },
      { ok: true, how: 'beneath' },
      `${o.target}: ${o.error}`,
    );

  for (const c of [plain, minimal]) {
    assert.ok((await c.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL), c.spec.name);
    assert.equal((await c.read('/sys/devices/system/cpu/online')).stdout, '0\n', c.spec.name);
    assert.ok(statusesOf(c).every((s) => s.state === 'live'));
  }
  assert.equal(depth(plain, '/proc/meminfo'), depthBefore);
  assert.equal(statusesOf(plain).find((s) => s.target === '/proc/cpuinfo')?.readOnly, true);
  assert.equal(statusesOf(plain).find((s) => s.target === '/proc/meminfo')?.readOnly, false);
  assert.notEqual((await plain.exec(['sh', '-c', 'echo x > /proc/cpuinfo'])).code, 0);
});

test('on kernels without MOVE_MOUNT_BENEATH and mount_setattr: detach, attach, classic attributes', async (t) => {
  const c = await node.container({
    name: 'old-kernel',
    ...LIMITS,
    files: DEFAULT_FILES,
    readOnlyFiles: ['/proc/cpuinfo'],
  });
  const depthBefore = depth(c, '/proc/meminfo');
  await restartLxcfs();
  process.env.LXCFS_REMOUNT_EMULATE_OLD_KERNEL = '1';
  t.after(() => delete process.env.LXCFS_REMOUNT_EMULATE_OLD_KERNEL);

  const outcomes = await repair([c]);
  for (const o of outcomes)
    assert.deepEqual(
      { ok: o.ok, how: o.how },
      { ok: true, how: 'detach-attach' },
      `${o.target}: ${o.error}`,
    );
  assert.ok((await c.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL));
  assert.equal(depth(c, '/proc/meminfo'), depthBefore);
  const cpuinfo = parseMountinfo(c.mountinfo()).find(
    (m) => m.mountPoint === '/proc/cpuinfo' && m.dev === lxcfs.dev,
  );
  assert.deepEqual(cpuinfo?.options.slice(0, 3), ['ro', 'nosuid', 'nodev']);
});

test("a missing target is attached again where the node's file showed through", async () => {
  const c = await node.container({ name: 'missing', ...LIMITS, files: DEFAULT_FILES });
  const remembered = { '/proc/meminfo': { lxcfsPath: '/proc/meminfo', readOnly: false } };
  assert.equal((await c.exec(['umount', '/proc/meminfo'])).code, 0);
  assert.ok(
    !(await c.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL),
    "the node's meminfo shows through",
  );
  const missing = statusesOf(c, remembered).filter((s) => s.state !== 'live');
  assert.deepEqual(
    missing.map((s) => [s.target, s.state]),
    [['/proc/meminfo', 'missing']],
  );

  const [outcome] = await remount([{ ...chosenProcess(c.pid), targets: missing }], options());
  assert.deepEqual({ ok: outcome?.ok, how: outcome?.how }, { ok: true, how: 'attach' });
  assert.ok((await c.read('/proc/meminfo')).stdout.includes(EXPECTED_MEMTOTAL));
});

test('failures are per target, named by step and errno, and leave the container as it was', async () => {
  const c = await node.container({ name: 'failing', ...LIMITS, files: ['/proc/meminfo'] });
  const mountinfoBefore = c.mountinfo();
  const plan = {
    ...chosenProcess(c.pid),
    targets: [
      {
        target: '/proc/meminfo',
        lxcfsPath: '/proc/no-such-file',
        readOnly: false,
        state: 'stale' as const,
      },
    ],
  };
  const [outcome] = await remount([plan], options());
  assert.equal(outcome?.ok, false);
  assert.match(outcome!.error!, /^open_tree: ENOENT/);
  assert.equal(c.mountinfo(), mountinfoBefore);

  await c.destroy();
  const [gone] = await remount([plan], options());
  assert.deepEqual(
    { ok: gone?.ok, error: gone?.error },
    { ok: false, error: 'the container exited' },
  );
});
