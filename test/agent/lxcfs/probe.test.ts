import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { probeLxcfs } from '../../../src/agent/lxcfs/probe.js';
import { helperPath, TestNode } from '../../helpers/node.js';

const node = new TestNode();
after(() => node.cleanup());

test('a live lxcfs answers; a stopped one times out without blocking the event loop', async () => {
  const lxcfs = await node.lxcfsWithAnchor();
  assert.equal((await probeLxcfs(helperPath, node.fuseMount, 2000)).ok, true);

  process.kill(lxcfs.pid, 'SIGSTOP');
  try {
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const started = Date.now();
    const result = await probeLxcfs(helperPath, node.fuseMount, 500);
    clearInterval(ticker);
    assert.deepEqual(
      { ok: result.ok, error: result.error },
      { ok: false, error: 'no answer within 500 ms' },
    );
    assert.ok(Date.now() - started < 1500, 'the hung read was abandoned at the timeout');
    assert.ok(ticks >= 15, `the event loop kept running during the hang (${ticks} ticks)`);
  } finally {
    process.kill(lxcfs.pid, 'SIGCONT');
  }
  assert.equal(
    (await probeLxcfs(helperPath, node.fuseMount, 2000)).ok,
    true,
    'answers again once continued',
  );

  const nothing = await probeLxcfs(helperPath, join(node.dir, 'not-mounted'), 2000);
  assert.deepEqual({ ok: nothing.ok, error: nothing.error }, { ok: false, error: 'open: ENOENT' });
});
