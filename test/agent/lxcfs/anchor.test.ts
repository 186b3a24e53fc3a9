import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { clearLxcfsMounts, inspectAnchor, prepareAnchor } from '../../../src/agent/lxcfs/anchor.js';
import { fuseDevAt, mountsAtOrBelow, readOwnMounts } from '../../../src/agent/host/mountinfo.js';
import { LxcfsWebhookError } from '../../../src/errors.js';
import { helperPath, TestNode } from '../../helpers/node.js';

const node = new TestNode();
after(() => node.cleanup());
const log = pino({ level: 'silent' });

const mountsAt = (path: string) => readOwnMounts().filter((m) => m.mountPoint === path);

test('prepares a tmpfs anchor once, reuses it, and removes only empty leftover directories', async () => {
  await prepareAnchor(node.layout, log);
  assert.deepEqual(
    mountsAt(node.anchor).map((m) => m.fsType),
    ['tmpfs'],
  );
  assert.ok(
    existsSync(join(node.anchor, 'proc')) &&
      existsSync(join(node.anchor, 'sys')) &&
      existsSync(node.fuseMount),
  );

  // what a runtime leaves behind for a hostPath that did not exist, and things that are not ours
  mkdirSync(join(node.anchor, 'proc', 'loadavg'));
  mkdirSync(join(node.anchor, 'sys', 'devices', 'system', 'cpu', 'online'), { recursive: true });
  mkdirSync(join(node.anchor, 'proc', 'keep'));
  writeFileSync(join(node.anchor, 'proc', 'keep', 'file'), 'x');
  writeFileSync(join(node.anchor, 'state'), 'survives');

  await prepareAnchor(node.layout, log);
  assert.equal(mountsAt(node.anchor).length, 1, 'the existing tmpfs is reused, not stacked');
  assert.equal(readFileSync(join(node.anchor, 'state'), 'utf8'), 'survives');
  assert.ok(!existsSync(join(node.anchor, 'proc', 'loadavg')));
  assert.ok(!existsSync(join(node.anchor, 'sys', 'devices')));
  assert.ok(existsSync(join(node.anchor, 'proc', 'keep', 'file')));
});

test('lazily unmounts everything stacked on the anchor binds and the FUSE mountpoint, dead lxcfs included', async () => {
  const lxcfs = await node.lxcfsWithAnchor();
  const dev = fuseDevAt(readOwnMounts(), node.fuseMount);
  assert.deepEqual(inspectAnchor(readOwnMounts(), node.anchor, dev), {
    tmpfs: true,
    binds: { proc: 'live', sys: 'live' },
  });

  lxcfs.kill('SIGKILL');
  await lxcfs.exited;
  assert.deepEqual(inspectAnchor(readOwnMounts(), node.anchor, undefined).binds, {
    proc: 'dead',
    sys: 'dead',
  });
  // more on top: a tmpfs over the dead proc bind, and a second one over that
  for (let i = 0; i < 2; i++)
    execFileSync(helperPath, ['tmpfs', join(node.anchor, 'proc'), 'size=1m']);

  await clearLxcfsMounts(node.layout, log);
  for (const place of [node.fuseMount, join(node.anchor, 'proc'), join(node.anchor, 'sys')]) {
    assert.deepEqual(mountsAtOrBelow(readOwnMounts(), place), [], place);
  }
  assert.deepEqual(inspectAnchor(readOwnMounts(), node.anchor, undefined), {
    tmpfs: true,
    binds: { proc: 'absent', sys: 'absent' },
  });
});

test('refuses an anchor with a FUSE filesystem mounted directly on it, naming the fix', async () => {
  const foreign = await node.startForeignLxcfs();
  await assert.rejects(
    prepareAnchor({ ...node.layout, root: foreign.mount }, log),
    (err: LxcfsWebhookError) =>
      err.code === 'E_AGENT' &&
      err.message.includes(`systemctl disable --now lxcfs`) &&
      err.message.includes(`umount -l ${foreign.mount}`),
  );
  assert.equal(mountsAt(foreign.mount)[0]?.fsType, 'fuse.lxcfs', 'left alone');
});
