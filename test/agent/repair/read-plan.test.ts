import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mustReadMountinfo, readsEverything } from '../../../src/agent/repair/read-plan.js';

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

test('start and lxcfs-restart sweeps read everything, and every Nth periodic sweep', () => {
  assert.equal(readsEverything('start', 5, 30), true);
  assert.equal(readsEverything('lxcfs-restart', 5, 30), true);
  assert.deepEqual(
    [0, 1, 29, 30, 31, 60].map((n) => readsEverything('periodic', n, 30)),
    [true, false, false, true, false, true],
  );
});
