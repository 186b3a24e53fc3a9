import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RepairAttempts } from '../../../src/agent/repair/attempts.js';
import type { TargetStatus } from '../../../src/agent/repair/classify.js';

const missing: TargetStatus = {
  target: '/proc/meminfo',
  lxcfsPath: '/proc/meminfo',
  readOnly: false,
  state: 'missing',
};
const stale: TargetStatus = { ...missing, state: 'stale', deadMountId: 42 };

function attempts() {
  let now = 0;
  const a = new RepairAttempts(
    { failed: { firstMs: 10, maxMs: 40 }, refused: { firstMs: 100, maxMs: 400 } },
    () => now,
  );
  return { a, advance: (ms: number) => (now += ms) };
}

test('a refusal is news once, then waits out a doubling backoff, and stays news-free while nothing changes', () => {
  const { a, advance } = attempts();
  assert.equal(a.due('ns', missing, false), true);
  assert.equal(
    a.record('ns', missing, 'refused', 'a symlink at /proc/meminfo'),
    true,
    'the first: logged',
  );
  assert.equal(a.due('ns', missing, false), false);
  assert.equal(a.due('ns', missing, true), false, 'a new lxcfs does not make it ours');
  advance(100);
  assert.equal(a.due('ns', missing, false), true);
  assert.equal(
    a.record('ns', missing, 'refused', 'a symlink at /proc/meminfo'),
    false,
    'the same again: not logged',
  );
  advance(100);
  assert.equal(a.due('ns', missing, false), false, 'doubled to 200 ms');
  advance(100);
  assert.equal(a.due('ns', missing, false), true);
  assert.equal(
    a.record('ns', missing, 'refused', 'a FIFO at /proc/meminfo'),
    true,
    'another reason is news',
  );
  assert.deepEqual(a.summary(), { failed: 0, failedNamespaces: 0, refused: 1 });
});

test('a failure is retried at once by a new lxcfs; another situation starts afresh; success and repair forget it', () => {
  const { a } = attempts();
  a.record('ns', stale, 'failed', 'move_mount: EINVAL');
  assert.equal(a.due('ns', stale, false), false);
  assert.equal(a.due('ns', stale, false, 10), true, 'due within the given early margin');
  assert.equal(a.due('ns', stale, true), true);
  assert.equal(
    a.due('ns', { ...stale, deadMountId: 43 }, false),
    true,
    'another dead mount: a new start',
  );
  assert.deepEqual(a.summary(), {
    failed: 1,
    failedNamespaces: 1,
    example: 'move_mount: EINVAL',
    refused: 0,
  });
  assert.equal(a.succeeded('ns', '/proc/meminfo')?.count, 1);
  assert.deepEqual(a.summary(), { failed: 0, failedNamespaces: 0, refused: 0 });
  a.record('gone', stale, 'failed', 'x');
  a.retain(new Set());
  assert.equal(a.summary().failed, 0, 'targets no longer broken are forgotten');
});
