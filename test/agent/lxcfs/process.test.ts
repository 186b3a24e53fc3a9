import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import {
  explainLxcfsFailure,
  findLxcfsServing,
  startLxcfs,
} from '../../../src/agent/lxcfs/process.js';
import { LxcfsWebhookError } from '../../../src/errors.js';
import { TestNode } from '../../helpers/node.js';

const node = new TestNode();
after(() => node.cleanup());
const log = pino({ level: 'silent' });
const FUSE = '/run/lxcfs-webhook/fuse';

test('known fatal errors name their fix', () => {
  // lines as lxcfs 5.0.3 and libfuse print them
  assert.match(
    explainLxcfsFailure(
      "../src/lxcfs.c: 1152: set_pidfile: PID file '/run/lxcfs-webhook/lxcfs.pid' is already locked",
      FUSE,
    )!.fix,
    /another lxcfs holds the pidfile \/run\/lxcfs-webhook\/lxcfs.pid: stop it/,
  );
  assert.match(
    explainLxcfsFailure(
      `fuse: failed to access mountpoint ${FUSE}: Transport endpoint is not connected`,
      FUSE,
    )!.fix,
    /dead lxcfs mount: unmount it lazily \(umount -l \/run\/lxcfs-webhook\/fuse\)/,
  );
  assert.match(explainLxcfsFailure(`fuse: mountpoint is not empty`, FUSE)!.fix, /libfuse2.*fuse3/);
  assert.match(
    explainLxcfsFailure("fuse: bad mount point `/x': No such file or directory", FUSE)!.fix,
    /unusable \(No such file or directory\)/,
  );
  assert.match(
    explainLxcfsFailure("fuse: device not found, try 'modprobe fuse' first", FUSE)!.fix,
    /privileged/,
  );
  assert.equal(explainLxcfsFailure('Running destructor lxcfs_exit', FUSE), undefined);
});

test('a missing lxcfs binary is one error with the fix', async () => {
  await assert.rejects(
    startLxcfs(
      {
        bin: 'lxcfs-does-not-exist',
        args: [],
        fuseMount: node.fuseMount,
        pidfile: join(node.dir, 'x.pid'),
      },
      log,
      5000,
    ),
    (err: LxcfsWebhookError) =>
      err.code === 'E_AGENT' &&
      err.setting === 'bin' &&
      /not found: install lxcfs .* or give the agent its path/.test(err.message),
  );
});

test('starts real lxcfs, reports its FUSE dev once mounted, and its exit', async () => {
  mkdirSync(node.fuseMount, { recursive: true });
  const lxcfs = await startLxcfs(
    {
      bin: 'lxcfs',
      args: ['--enable-cfs'],
      fuseMount: node.fuseMount,
      pidfile: join(node.dir, 'run', 'lxcfs.pid'),
    },
    log,
    5000,
  );
  const mount = node.ownMounts().find((m) => m.mountPoint === node.fuseMount);
  assert.equal(mount?.dev, lxcfs.dev);
  assert.deepEqual(findLxcfsServing('/proc', node.fuseMount), [lxcfs.pid]);

  // a second lxcfs on the same pidfile fails, and says why in one line
  mkdirSync(join(node.dir, 'second'));
  await assert.rejects(
    startLxcfs(
      {
        bin: 'lxcfs',
        args: [],
        fuseMount: join(node.dir, 'second'),
        pidfile: join(node.dir, 'run', 'lxcfs.pid'),
      },
      log,
      5000,
    ),
    (err: LxcfsWebhookError) =>
      err.code === 'E_AGENT' &&
      err.message.startsWith(
        `another lxcfs holds the pidfile ${join(node.dir, 'run', 'lxcfs.pid')}`,
      ),
  );

  lxcfs.kill('SIGKILL');
  assert.deepEqual(await lxcfs.exited, { code: null, signal: 'SIGKILL' });
});
