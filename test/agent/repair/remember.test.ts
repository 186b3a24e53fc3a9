import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TargetStatus } from '../../../src/agent/repair/classify.js';
import { remember } from '../../../src/agent/repair/remember.js';
import type { AgentState } from '../../../src/agent/repair/state.js';
import type { NamespaceView } from '../../../src/agent/repair/survey.js';

const LIVE = '0:50';
const DEAD = '0:41';

function view(
  mntNs: string,
  cgroup: string,
  statuses: TargetStatus[],
  fuseDevs = [LIVE],
): NamespaceView {
  return {
    ns: { mntNs, pid: 10, startTime: 100, pids: [10] },
    identity: { cgroup },
    statuses,
    fuseDevs: new Set(fuseDevs),
    ourTargets: statuses.map((s) => s.target),
  };
}
const live = (target: string, readOnly = false): TargetStatus => ({
  target,
  lxcfsPath: target,
  readOnly,
  state: 'live',
});
const meminfo = { lxcfsPath: '/proc/meminfo', readOnly: false };
const uptime = { lxcfsPath: '/proc/uptime', readOnly: false };

const state: AgentState = {
  knownDevs: [DEAD, LIVE],
  namespaces: { 'mnt:[1]': { cgroup: '/pod1/c', targets: { '/proc/meminfo': meminfo } } },
};

test('a sweep that teaches nothing gets back the very same state', () => {
  assert.equal(
    remember(state, [view('mnt:[1]', '/pod1/c', [live('/proc/meminfo')], [DEAD])], LIVE),
    state,
  );
  // a missing target carries what was remembered: nothing new either
  const missing: TargetStatus = { target: '/proc/meminfo', ...meminfo, state: 'missing' };
  assert.equal(remember(state, [view('mnt:[1]', '/pod1/c', [missing], [DEAD])], LIVE), state);
});

test('a new target is added to what the namespace had; other namespaces keep their objects', () => {
  const two: AgentState = {
    ...state,
    namespaces: {
      ...state.namespaces,
      'mnt:[2]': { cgroup: '/pod2/c', targets: { '/proc/uptime': uptime } },
    },
  };
  const next = remember(
    two,
    [
      view('mnt:[1]', '/pod1/c', [live('/proc/uptime')], [DEAD]),
      view('mnt:[2]', '/pod2/c', [live('/proc/uptime')]),
    ],
    LIVE,
  );
  assert.deepEqual(next.namespaces['mnt:[1]'], {
    cgroup: '/pod1/c',
    targets: { '/proc/meminfo': meminfo, '/proc/uptime': uptime },
  });
  assert.equal(next.namespaces['mnt:[2]'], two.namespaces['mnt:[2]']);
  assert.equal(
    two.namespaces['mnt:[1]']!.targets['/proc/uptime'],
    undefined,
    'the old state is left as it was',
  );
});

test('a changed read-only flag is remembered', () => {
  const next = remember(
    state,
    [view('mnt:[1]', '/pod1/c', [live('/proc/meminfo', true)], [DEAD])],
    LIVE,
  );
  assert.deepEqual(next.namespaces['mnt:[1]']!.targets, {
    '/proc/meminfo': { lxcfsPath: '/proc/meminfo', readOnly: true },
  });
});

test('a reused namespace inode on another cgroup starts from nothing', () => {
  const next = remember(state, [view('mnt:[1]', '/pod9/c', [live('/proc/uptime')], [DEAD])], LIVE);
  assert.deepEqual(next.namespaces, {
    'mnt:[1]': { cgroup: '/pod9/c', targets: { '/proc/uptime': uptime } },
  });
});

test('gone namespaces are dropped, new ones added', () => {
  assert.deepEqual(remember(state, [], LIVE), { knownDevs: [LIVE], namespaces: {} });
  const next = remember(state, [view('mnt:[2]', '/pod2/c', [live('/proc/uptime')])], LIVE);
  assert.deepEqual(Object.keys(next.namespaces), ['mnt:[2]']);
});

test('a connection no mount uses any more is forgotten, the live one never; the namespaces stay the same object', () => {
  const next = remember(state, [view('mnt:[1]', '/pod1/c', [live('/proc/meminfo')])], LIVE);
  assert.deepEqual(next.knownDevs, [LIVE]);
  assert.equal(next.namespaces, state.namespaces);
  assert.deepEqual(
    remember({ ...state, knownDevs: [DEAD] }, [], LIVE).knownDevs,
    [],
    'the live connection is kept, never added',
  );
});
