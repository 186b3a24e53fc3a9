// When the agent sweeps, on a mocked clock: the schedule's timers and notifications, no real waiting.
import assert from 'node:assert/strict';
import { beforeEach, afterEach, mock, test } from 'node:test';
import type { SweepTrigger } from '../../../src/agent/repair/read-plan.js';
import { SweepSchedule } from '../../../src/agent/repair/sweep-schedule.js';

const config = {
  pollMs: 1_000,
  fullMs: 60_000,
  settleMs: 100,
  changeGapMs: 500,
  newCgroupMs: [250, 2_500],
};

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] }));
afterEach(() => mock.timers.reset());

/** A schedule whose sweeps are recorded; `notified` says whether notifications are complete. */
function scheduled(notified: { now: boolean }) {
  const sweeps: SweepTrigger[] = [];
  const schedule = new SweepSchedule(
    config,
    (trigger) => {
      sweeps.push(trigger);
      return Promise.resolve();
    },
    () => notified.now,
  );
  return { schedule, sweeps };
}

/** Moves the clock and lets the sweeps' promise callbacks run. */
async function advance(ms: number): Promise<void> {
  mock.timers.tick(ms);
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** A started schedule, past the sweeps it runs at start. */
async function started(notified: { now: boolean }) {
  const { schedule, sweeps } = scheduled(notified);
  schedule.changed(); // before start: ignored
  schedule.start();
  await advance(config.settleMs);
  // One sweep for notifications that came before start; without them, a poll at once too.
  assert.deepEqual(sweeps.splice(0), notified.now ? ['change'] : ['poll', 'change']);
  // Past the gap that follows that change sweep, so each test starts clean.
  await advance(config.changeGapMs);
  return { schedule, sweeps };
}

test('with complete notifications a quiet node sweeps only at the safety net', async () => {
  const { schedule, sweeps } = await started({ now: true });
  await advance(config.fullMs - config.settleMs - config.changeGapMs - 1);
  assert.deepEqual(sweeps, []);
  await advance(1);
  assert.deepEqual(sweeps, ['full']);
  schedule.stop();
  await advance(120_000);
  assert.deepEqual(sweeps, ['full']);
});

test('a burst of notifications is one change sweep, the settle time after the first', async () => {
  const { schedule, sweeps } = await started({ now: true });
  schedule.changed();
  await advance(50);
  schedule.changed();
  schedule.changed();
  await advance(49);
  assert.deepEqual(sweeps, []);
  await advance(1);
  assert.deepEqual(sweeps, ['change']);
  await advance(1_000);
  assert.deepEqual(sweeps, ['change']);
  schedule.stop();
});

test('notifications all the time: change sweeps start no closer than the gap', async () => {
  const { schedule, sweeps } = await started({ now: true });
  const at: number[] = [];
  const t0 = Date.now();
  for (let ms = 0; ms < 3_000; ms += 50) {
    schedule.changed();
    await advance(50);
    if (sweeps.length > at.length) at.push(Date.now() - t0);
  }
  assert.deepEqual(at, [100, 600, 1100, 1600, 2100, 2600]);
  schedule.stop();
});

test('a new cgroup is swept after each of the delays its namespace may take', async () => {
  const { schedule, sweeps } = await started({ now: true });
  schedule.cgroupCreated();
  schedule.cgroupCreated(); // the pod's cgroup, then its container's: the same sweeps
  await advance(250);
  assert.deepEqual(sweeps, ['change']);
  await advance(2_250);
  assert.deepEqual(sweeps, ['change', 'change']);
  await advance(10_000);
  assert.deepEqual(sweeps, ['change', 'change']);
  schedule.stop();
});

test('without complete notifications it polls; once they are complete it stops polling and sweeps once', async () => {
  const notified = { now: false };
  const { schedule, sweeps } = await started(notified);
  await advance(3_000 - config.settleMs - config.changeGapMs);
  assert.deepEqual(sweeps, ['poll', 'poll', 'poll']);
  notified.now = true;
  schedule.coverageChanged();
  await advance(100);
  assert.deepEqual(sweeps, ['poll', 'poll', 'poll', 'change']);
  await advance(5_000);
  assert.equal(sweeps.length, 4);
  // Lost again (the watcher died, which is also a change): polls start over, the first at once.
  notified.now = false;
  schedule.changed();
  schedule.coverageChanged();
  await advance(100);
  assert.deepEqual(sweeps.slice(4), ['poll', 'change']);
  await advance(1_000);
  assert.deepEqual(sweeps.slice(4), ['poll', 'change', 'poll']);
  schedule.stop();
});

test('a sweep that left a repair undone is retried a sweep interval later, until one leaves nothing undone', async () => {
  const { schedule, sweeps } = await started({ now: true });
  // Done: nothing to retry.
  schedule.swept({ failed: 0, notEntered: 0 });
  await advance(5_000);
  assert.deepEqual(sweeps, []);
  // A failed remount (no mount table changed, so no notification): retried once, however often told.
  schedule.swept({ failed: 1, notEntered: 0 });
  schedule.swept({ failed: 1, notEntered: 0 });
  await advance(config.pollMs - 1);
  assert.deepEqual(sweeps, []);
  await advance(1);
  assert.deepEqual(sweeps, ['retry']);
  // The retry failed too (a namespace not entered this time), then a sweep that failed as a whole.
  schedule.swept({ failed: 0, notEntered: 1 });
  await advance(config.pollMs);
  schedule.swept(undefined);
  await advance(config.pollMs);
  assert.deepEqual(sweeps, ['retry', 'retry', 'retry']);
  // Repaired: no more retries.
  schedule.swept({ failed: 0, notEntered: 0 });
  await advance(10_000);
  assert.deepEqual(sweeps, ['retry', 'retry', 'retry']);
  // Stopped with a retry due: it never runs.
  schedule.swept({ failed: 1, notEntered: 0 });
  schedule.stop();
  await advance(10_000);
  assert.equal(sweeps.length, 3);
});

test('while it polls, polls retry what a sweep left undone', async () => {
  const { schedule, sweeps } = await started({ now: false });
  schedule.swept({ failed: 1, notEntered: 0 });
  await advance(3_000);
  assert.deepEqual(sweeps, ['poll', 'poll', 'poll']);
  schedule.stop();
});
