import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoalescingRunner } from '../../src/plumbing/coalescing-runner.js';

/** A task the test finishes by hand, counting how often it started. */
function manualTask() {
  const finishers: Array<() => void> = [];
  let started = 0;
  const task = () =>
    new Promise<number>((resolve) => {
      const n = ++started;
      finishers.push(() => resolve(n));
    });
  return { task, finishNext: () => finishers.shift()!(), started: () => started };
}

test('requests during a run coalesce into one more run, which all of them wait for', async () => {
  const runner = new CoalescingRunner<number>();
  const { task, finishNext, started } = manualTask();
  const first = runner.run(task);
  const second = runner.run(task);
  const third = runner.run(task);
  assert.equal(started(), 1, 'never two at once');
  finishNext();
  assert.equal(await first, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(started(), 2, 'exactly one more run');
  finishNext();
  assert.deepEqual(await Promise.all([second, third]), [2, 2]);
});

test('a failed run does not stop the queued one', async () => {
  const runner = new CoalescingRunner<string>();
  const failing = runner.run(() => Promise.reject(new Error('boom')));
  const next = runner.run(() => Promise.resolve('ran'));
  await assert.rejects(failing, /boom/);
  assert.equal(await next, 'ran');
});

test('runUnlessBusy drops a request made during a run', async () => {
  const runner = new CoalescingRunner<number>();
  const { task, finishNext, started } = manualTask();
  const first = runner.runUnlessBusy(task);
  assert.equal(await runner.runUnlessBusy(task), undefined);
  assert.equal(started(), 1);
  finishNext();
  assert.equal(await first, 1);
  const later = runner.runUnlessBusy(task);
  finishNext();
  assert.equal(await later, 2, 'runs again once idle');
});
