import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  mustReadMountinfo,
  readsAfterSweep,
  readsEverything,
  strongerTrigger,
  type SweepTrigger,
} from '../../../src/agent/repair/read-plan.js';

const quiet = { pid: 10, startTime: 100, confirmed: true, dirty: false };

test('an unchanged table of a confirmed watch on the same process is reused', () => {
  assert.equal(mustReadMountinfo({ pid: 10, cachedPid: 10, watch: quiet, readAll: false }), false);
});

test('new, unwatched, unconfirmed, changed or re-represented namespaces are read', () => {
  const cases = {
    'nothing cached (a new namespace)': {
      pid: 10,
      cachedPid: undefined,
      watch: quiet,
      readAll: false,
    },
    'not watched (notifications off, watcher down, add failed)': {
      pid: 10,
      cachedPid: 10,
      watch: undefined,
      readAll: false,
    },
    'watch not confirmed yet': {
      pid: 10,
      cachedPid: 10,
      watch: { ...quiet, confirmed: false },
      readAll: false,
    },
    'a change was reported': {
      pid: 10,
      cachedPid: 10,
      watch: { ...quiet, dirty: true },
      readAll: false,
    },
    'cached through another process': { pid: 10, cachedPid: 9, watch: quiet, readAll: false },
    'the watch is on another process': {
      pid: 10,
      cachedPid: 10,
      watch: { ...quiet, pid: 9 },
      readAll: false,
    },
    'the sweep reads everything': { pid: 10, cachedPid: 10, watch: quiet, readAll: true },
  };
  for (const [what, input] of Object.entries(cases))
    assert.equal(mustReadMountinfo(input), true, what);
});

test('start, lxcfs-restart and safety-net sweeps read every table; polls, retries and changes what changed', () => {
  const all: SweepTrigger[] = ['start', 'lxcfs-restart', 'full', 'poll', 'retry', 'change'];
  assert.deepEqual(
    all.map((t) => readsEverything(t)),
    [true, true, true, false, false, false],
  );
});

test('a sweep asked for while another waits runs as the one that does more', () => {
  assert.equal(strongerTrigger(undefined, 'change'), 'change');
  assert.equal(strongerTrigger('change', 'lxcfs-restart'), 'lxcfs-restart');
  assert.equal(strongerTrigger('lxcfs-restart', 'change'), 'lxcfs-restart');
  assert.equal(strongerTrigger('poll', 'full'), 'full');
  assert.equal(strongerTrigger('change', 'retry'), 'retry');
  assert.equal(strongerTrigger('retry', 'poll'), 'poll');
  assert.equal(strongerTrigger('start', 'lxcfs-restart'), 'start');
});

test('reads inside containers have a reason: a sample after start, restart and the safety net; changed tables otherwise', () => {
  const changed = ['mnt:[1]', 'mnt:[2]'];
  // At start every namespace is new to the agent, after a restart every one is: a sample stands for them.
  assert.deepEqual(readsAfterSweep('start', changed), { sample: true, namespaces: [] });
  assert.deepEqual(readsAfterSweep('lxcfs-restart', changed), { sample: true, namespaces: [] });
  // The safety net reads what changed unnoticed, and a sample.
  assert.deepEqual(readsAfterSweep('full', changed), { sample: true, namespaces: changed });
  for (const trigger of ['change', 'poll', 'retry'] as const)
    assert.deepEqual(readsAfterSweep(trigger, changed), { sample: false, namespaces: changed });
  // Nothing changed, nothing read: a quiet node costs no read.
  assert.deepEqual(readsAfterSweep('change', []), { sample: false, namespaces: [] });
});
