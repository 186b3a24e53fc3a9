import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  classifyTargets,
  sameInput,
  type ClassifyInput,
} from '../../../src/agent/repair/classify.js';
import { readFileSync } from 'node:fs';
import { ALLOWED_FILES } from '../../../src/config/defaults.js';
import { parseMountinfo, type Mount } from '../../../src/agent/host/mountinfo.js';
import { fixturePath } from '../../helpers/paths.js';

let nextId = 100;
function mount(
  mountPoint: string,
  dev: string,
  { fsType = 'fuse.lxcfs', root = mountPoint, options = ['rw'] } = {},
): Mount {
  return {
    mountId: nextId++,
    parentId: 1,
    dev,
    root,
    rootDeleted: false,
    mountPoint,
    options,
    fsType,
    source: 'lxcfs',
  };
}

const LIVE = '0:50';
const DEAD = '0:41';
const FOREIGN = '0:77';

function classify(mounts: Mount[], remembered: ClassifyInput['remembered'] = {}) {
  return classifyTargets({
    mounts,
    liveDev: LIVE,
    knownDevs: new Set([DEAD, LIVE]),
    remembered,
    files: ALLOWED_FILES,
  });
}

test('a mount on the running lxcfs connection is live, and keeps its read-only flag', () => {
  const statuses = classify([
    mount('/proc/meminfo', LIVE),
    mount('/proc/cpuinfo', LIVE, { options: ['ro'] }),
  ]);
  assert.deepEqual(statuses, [
    { target: '/proc/cpuinfo', lxcfsPath: '/proc/cpuinfo', readOnly: true, state: 'live' },
    { target: '/proc/meminfo', lxcfsPath: '/proc/meminfo', readOnly: false, state: 'live' },
  ]);
});

test('a mount on an earlier lxcfs connection of ours is stale, with its mount id', () => {
  const dead = mount('/proc/meminfo', DEAD);
  assert.deepEqual(classify([dead]), [
    {
      target: '/proc/meminfo',
      lxcfsPath: '/proc/meminfo',
      readOnly: false,
      state: 'stale',
      deadMountId: dead.mountId,
    },
  ]);
});

test('a remembered target with no lxcfs mount left is missing', () => {
  const statuses = classify([mount('/proc', '0:60', { fsType: 'proc', root: '/' })], {
    '/proc/uptime': { lxcfsPath: '/proc/uptime', readOnly: true },
  });
  assert.deepEqual(statuses, [
    { target: '/proc/uptime', lxcfsPath: '/proc/uptime', readOnly: true, state: 'missing' },
  ]);
});

test('another lxcfs (unknown connection) is never ours, not even where ours was', () => {
  const statuses = classify([mount('/proc/meminfo', FOREIGN), mount('/proc/stat', FOREIGN)], {
    '/proc/stat': { lxcfsPath: '/proc/stat', readOnly: false },
  });
  assert.deepEqual(statuses, []);
});

test('only files the webhook injects count: other paths and other lxcfs files are ignored', () => {
  const statuses = classify([
    mount('/proc/pressure', DEAD), // not injectable
    mount('/var/lib/lxcfs', DEAD, { root: '/' }), // the whole lxcfs tree elsewhere
    mount('/proc/meminfo', DEAD, { root: '/sys/devices/system/cpu/cpu0' }), // not an lxcfs file we serve there
  ]);
  assert.deepEqual(statuses, []);
});

test('non-lxcfs filesystems on a target are not ours even on a known dev number', () => {
  // dev numbers of anonymous filesystems are shared between FUSE and e.g. tmpfs
  assert.deepEqual(classify([mount('/proc/meminfo', DEAD, { fsType: 'tmpfs' })]), []);
});

test('the visible mount decides: a live swap on top of a dead one is live', () => {
  const dead = mount('/proc/meminfo', DEAD);
  const live = { ...mount('/proc/meminfo', LIVE), parentId: dead.mountId };
  assert.equal(classify([dead, live])[0]?.state, 'live');
});

test('a container that never had lxcfs files has nothing of ours', () => {
  assert.deepEqual(
    classify([
      mount('/', '254:0', { fsType: 'ext4', root: '/' }),
      mount('/proc', '0:60', { fsType: 'proc', root: '/' }),
    ]),
    [],
  );
});

test('an input is the same only when every part is the same object: an equal copy is another input', () => {
  const input: ClassifyInput = {
    mounts: [mount('/proc/meminfo', LIVE)],
    liveDev: LIVE,
    knownDevs: new Set([LIVE]),
    remembered: {},
    files: ALLOWED_FILES,
  };
  assert.equal(sameInput(input, { ...input }), true);
  assert.equal(
    sameInput(input, { ...input, liveDev: DEAD }),
    false,
    'lxcfs restarted: the live connection changed',
  );
  const copies = {
    mounts: [...input.mounts],
    knownDevs: new Set(input.knownDevs),
    remembered: { ...input.remembered },
    files: [...input.files],
  };
  for (const [part, copy] of Object.entries(copies))
    assert.equal(sameInput(input, { ...input, [part]: copy }), false, part);
});

/** The sections of the mountinfo the real kernel printed in each state (test/fixtures/mountinfo/capture.sh). */
function capturedStates(): Map<string, Mount[]> {
  const text = readFileSync(fixturePath('mountinfo', 'lxcfs-states.txt'), 'utf8');
  return new Map(
    text
      .split(/^# /m)
      .filter(Boolean)
      .map((section) => {
        const [state = '', ...lines] = section.split('\n');
        return [state, parseMountinfo(lines.join('\n'))];
      }),
  );
}

test('captured from the kernel: every failure state is classified from the connection, whatever the root shows', () => {
  const states = capturedStates();
  assert.equal(states.size, 6, 'every state of capture.sh is in the fixture');
  const captured = '0:43';
  const afterRestart = '0:44';
  const summary = (mounts: Mount[], liveDev: string) =>
    classifyTargets({
      mounts,
      liveDev,
      knownDevs: new Set([captured, liveDev]),
      remembered: {},
      files: ALLOWED_FILES,
    }).map((s) => `${s.target}=${s.state}:${s.lxcfsPath}`);
  const allLive = [
    '/proc/cpuinfo=live:/proc/cpuinfo',
    '/proc/meminfo=live:/proc/meminfo',
    '/proc/uptime=live:/proc/uptime',
  ];
  const allStale = allLive.map((line) => line.replace('=live', '=stale'));
  for (const [state, mounts] of states) {
    // A hung lxcfs still owns its connection: the probe reports it, and the supervisor kills it.
    const expected = state === 'live' || state === 'hung' ? allLive : allStale;
    assert.deepEqual(
      summary(mounts, state === 'live' || state === 'hung' ? captured : afterRestart),
      expected,
      state,
    );
  }
  const deleted = states
    .get('dead, meminfo also looked up while dead')!
    .filter((m) => m.rootDeleted)
    .map((m) => m.mountPoint);
  assert.deepEqual(
    deleted,
    ['/proc/meminfo', '/proc/uptime'],
    'the fixture holds the //deleted form',
  );
  assert.ok(
    states.get('live')!.some((m) => m.mountPoint === '/run/with space'),
    'and an escaped mount point',
  );
});
