import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HelperProcess, restartDelayMs } from '../../../src/agent/host/helper-process.js';

test('restart delays double while a helper keeps dying, and start over after a long run', () => {
  const backoff = { firstMs: 1_000, maxMs: 8_000 };
  const delays: number[] = [];
  let delay = 0;
  for (let i = 0; i < 5; i++) delays.push((delay = restartDelayMs(delay, 10, backoff)));
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 8_000]);
  assert.equal(restartDelayMs(8_000, 8_000, backoff), 1_000);
});

/** Runs `script` as a helper; resolves with its lines and how it ended. */
function run(script: string): Promise<{ lines: unknown[]; how: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const lines: unknown[] = [];
    new HelperProcess<unknown>('/bin/sh', ['-c', script], {
      line: (value) => lines.push(value),
      gone: (how) => resolve({ lines, how }),
    });
  });
}

test('JSON lines are handed over, split across writes or not; the end says how', async () => {
  const { lines, how } = await run(`printf '{"a":1}\\n{"b"'; sleep 0.1; printf ':2}\\n'; exit 3`);
  assert.deepEqual(lines, [{ a: 1 }, { b: 2 }]);
  assert.equal(how.code, 3);
});

test('a line that is not JSON gets the helper killed, and nothing after it is believed', async () => {
  const { lines, how } = await run(`echo '{"a":1}'; echo oops; echo '{"b":2}'; exec sleep 30`);
  assert.deepEqual(lines, [{ a: 1 }]);
  assert.equal(how.signal, 'SIGKILL');
});

test('end() closes its stdin, and kills it when it does not exit in time', async () => {
  const exited = new HelperProcess<unknown>('/bin/sh', ['-c', 'cat >/dev/null'], {
    line: () => undefined,
    gone: () => undefined,
  });
  await exited.end(5_000);
  let how: Record<string, unknown> = {};
  const stubborn = new HelperProcess<unknown>('/bin/sh', ['-c', 'exec sleep 30'], {
    line: () => undefined,
    gone: (h) => (how = h),
  });
  await stubborn.end(100);
  assert.equal(how.signal, 'SIGKILL');
});
