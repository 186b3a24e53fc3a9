// The anchor lock against the real helper and real mounts: one holder, a second refused naming the
// first, and the hand-over from the directory to the tmpfs mounted on it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { AnchorLock } from '../../../src/agent/lxcfs/anchor-lock.js';
import { fusectlConnection } from '../../../src/agent/lxcfs/fuse-connection.js';
import { helperPath } from '../../helpers/node.js';
import { waitUntil } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-lock-'));
const anchor = join(dir, 'anchor');
mkdirSync(anchor);
after(async () => {
  await promisify(execFile)(helperPath, ['detach', anchor]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const noop = () => undefined;

test('a second lock on the anchor is refused, naming the agent that holds it; released, it can be taken', async () => {
  const first = await AnchorLock.take(helperPath, anchor, noop);
  await assert.rejects(AnchorLock.take(helperPath, anchor, noop), (err: Error) => {
    assert.match(
      err.message,
      new RegExp(
        `^another lxcfs-webhook agent \\(pid ${process.pid}: \\S*node .*\\) holds the anchor ${anchor}: run one agent per node and anchor`,
      ),
    );
    assert.match(err.message, /nothing was changed$/);
    return true;
  });
  await first.release();
  const again = await AnchorLock.take(helperPath, anchor, noop);
  await again.release();
});

test('after a tmpfs is mounted on the anchor, `again` locks it too: a newcomer meets the lock there', async () => {
  const lock = await AnchorLock.take(helperPath, anchor, noop);
  await promisify(execFile)(helperPath, ['tmpfs', anchor, 'size=1m']);
  // before `again`, the tmpfs is free: whoever locks it first wins
  const early = await AnchorLock.take(helperPath, anchor, noop);
  await assert.rejects(lock.again(), /holds the anchor/);
  await early.release();
  const owner = await AnchorLock.take(helperPath, anchor, noop);
  await assert.rejects(AnchorLock.take(helperPath, anchor, noop), /holds the anchor/);
  await owner.again(); // nothing new there: still held
  await owner.release();
});

test('a lock whose holder is killed is reported lost', async () => {
  let lost = false;
  const lock = await AnchorLock.take(helperPath, anchor, () => (lost = true));
  process.kill(lock.pid!, 'SIGKILL');
  await waitUntil('the loss is noticed', () => lost, { timeoutMs: 5000 });
  const next = await AnchorLock.take(helperPath, anchor, noop);
  await next.release();
});

test("fusectl names a connection by the kernel's dev_t", () => {
  assert.equal(fusectlConnection('0:52'), '52');
  assert.equal(fusectlConnection('8:1'), String(8 * 2 ** 20 + 1));
});
