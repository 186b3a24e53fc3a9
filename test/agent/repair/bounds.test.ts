import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limitPerContainer } from '../../../src/agent/repair/bounds.js';
import type { NamespaceView } from '../../../src/agent/repair/survey.js';

function view(mntNs: string, cgroup: string, startTime: number): NamespaceView {
  return {
    ns: { mntNs, pid: startTime, startTime, pids: [startTime] },
    identity: { cgroup },
    statuses: [],
    fuseDevs: new Set(),
    ourTargets: [],
  };
}

test('a container with more namespaces than the limit keeps its oldest ones, its own first; others are untouched', () => {
  // the container's own namespace (its init) is the oldest
  const copies = Array.from({ length: 10 }, (_, i) =>
    view(`mnt:[${100 + i}]`, '/pod/hog', 500 - i),
  );
  const views = [view('mnt:[1]', '/pod/a', 900), ...copies, view('mnt:[2]', '/pod/b', 901)];
  const { kept, rank, over } = limitPerContainer(views, 3);
  assert.deepEqual(
    kept.map((v) => v.ns.mntNs),
    ['mnt:[1]', 'mnt:[107]', 'mnt:[108]', 'mnt:[109]', 'mnt:[2]'],
  );
  assert.deepEqual([rank.get('mnt:[109]'), rank.get('mnt:[108]'), rank.get('mnt:[1]')], [0, 1, 0]);
  assert.deepEqual([...over], [['/pod/hog', 10]]);
});

test('within the limit nothing is dropped', () => {
  const views = [view('mnt:[1]', '/pod/a', 1), view('mnt:[2]', '/pod/a', 2)];
  const { kept, over } = limitPerContainer(views, 2);
  assert.equal(kept.length, 2);
  assert.equal(over.size, 0);
});
