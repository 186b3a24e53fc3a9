import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HeldFileProbe, probeLxcfs } from '../../../src/agent/lxcfs/probe.js';
import { helperPath, TestNode } from '../../helpers/node.js';
import { waitUntil } from '../../helpers/wait.js';

const node = new TestNode();

function allStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) =>
    /\) t|\) T/.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')),
  );
}
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

test("the agent's held-file probe: the open file read again at each probe; a hang times out and is never stacked", async (t) => {
  const node = new TestNode();
  t.after(() => node.cleanup());
  const lxcfs = await node.lxcfsWithAnchor();
  const probe = new HeldFileProbe(helperPath, node.fuseMount);
  try {
    assert.equal((await probe.probe(2000)).ok, true);
    assert.equal((await probe.probe(2000)).ok, true, 'the held file reads again');

    process.kill(lxcfs.pid, 'SIGSTOP');
    try {
      // The held file answers within microseconds: wait until every thread of lxcfs has stopped.
      await waitUntil('lxcfs stopped', () => allStopped(lxcfs.pid));
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 20);
      const hung = await probe.probe(500);
      clearInterval(ticker);
      assert.deepEqual(
        { ok: hung.ok, error: hung.error },
        { ok: false, error: 'no answer within 500 ms' },
      );
      assert.ok(ticks >= 15, `the event loop kept running during the hang (${ticks} ticks)`);
      // The hung read still holds a pool thread: the next probe waits for nothing and adds no read.
      const stacked = await probe.probe(500);
      assert.deepEqual(
        { ok: stacked.ok, error: stacked.error },
        { ok: false, error: 'the last read has not returned' },
      );
    } finally {
      process.kill(lxcfs.pid, 'SIGCONT');
    }
    await waitUntil('answers again once continued', async () => (await probe.probe(2000)).ok);

    // lxcfs killed: the held file is on a dead connection.
    lxcfs.kill('SIGKILL');
    await lxcfs.exited;
    const dead = await probe.probe(2000);
    assert.deepEqual({ ok: dead.ok, error: dead.error }, { ok: false, error: 'read: ENOTCONN' });
  } finally {
    probe.close();
  }
  assert.deepEqual((await probe.probe(2000)).error, 'closed');
});
