// The batched stdout of busy servers: every line reaches stdout, whole and in order, whether the process
// ends by draining its loop or by process.exit() right after logging (a fatal error).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const logModule = new URL('../src/log.js', import.meta.url).href;

function linesOf(script: string): {
  status: number | null;
  records: Array<{ msg: string; level: string; time: string; component: string }>;
} {
  const run = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { createLogger, asyncStdout } from '${logModule}';\n${script}`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(run.stderr, '');
  return {
    status: run.status,
    records: run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line)),
  };
}

test('lines logged in a burst reach stdout in order, and the last one before the loop drains too', () => {
  const { status, records } = linesOf(`
    const log = createLogger('webhook', 'info', asyncStdout());
    for (let i = 0; i < 2000; i++) log.info({ i }, 'review');
    setTimeout(() => log.info('stopped'), 30);
  `);
  assert.equal(status, 0);
  assert.equal(records.length, 2001);
  assert.deepEqual(
    records.slice(0, 2000).map((r) => (r as unknown as { i: number }).i),
    [...Array(2000).keys()],
  );
  assert.equal(records.at(-1)!.msg, 'stopped');
  assert.equal(records[0]!.component, 'webhook');
  assert.equal(records[0]!.level, 'info');
  assert.match(records[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('a line logged just before process.exit() is written', () => {
  const { status, records } = linesOf(`
    const log = createLogger('webhook', 'info', asyncStdout());
    log.info('serving');
    setTimeout(() => { log.error('cannot go on'); process.exit(3); }, 30);
  `);
  assert.equal(status, 3);
  assert.deepEqual(
    records.map((r) => r.msg),
    ['serving', 'cannot go on'],
  );
});
