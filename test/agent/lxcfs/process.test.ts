import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { parseMountinfo } from '../../../src/agent/host/mountinfo.js';
import {
  explainLxcfsFailure,
  findLxcfsServing,
  kernelFilesProblem,
  startLxcfs,
} from '../../../src/agent/lxcfs/process.js';
import { LxcfsWebhookError } from '../../../src/errors.js';
import { helperPath, TestNode } from '../../helpers/node.js';
import { cliPath } from '../../helpers/paths.js';

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

test("lxcfs reads the kernel's files: an lxcfs file (or any other mount) over them is named with the fix", () => {
  const lines = [
    '20 1 254:1 / / rw - ext4 /dev/vda1 rw',
    '21 20 0:5 / /proc rw - proc proc rw',
    '24 20 0:7 / /sys rw - sysfs sysfs rw',
  ];
  assert.equal(kernelFilesProblem(parseMountinfo(lines.join('\n'))), undefined);
  const injected = [...lines, '22 21 0:43 /proc/meminfo /proc/meminfo rw - fuse.lxcfs lxcfs rw'];
  assert.match(
    kernelFilesProblem(parseMountinfo(injected.join('\n')))!,
    /^\/proc\/meminfo in the agent's mount namespace is a fuse.lxcfs mount \(lxcfs at \/proc\/meminfo\), not the kernel's proc: .*\(label it lxcfs-webhook.io\/inject=disabled/,
  );
  const online = [
    ...lines,
    '25 24 254:1 /tmp/online /sys/devices/system/cpu/online rw - ext4 /dev/vda1 rw',
  ];
  assert.match(
    kernelFilesProblem(parseMountinfo(online.join('\n')))!,
    /^\/sys\/devices\/system\/cpu\/online in the agent's mount namespace is a ext4 mount/,
  );
});

test('the agent does not start lxcfs where /proc/meminfo is an lxcfs file (its pod injected)', async () => {
  // In a scratch mount namespace, never the test's own: another lxcfs's meminfo over /proc/meminfo.
  const foreign = await node.startForeignLxcfs();
  const script = `mount --bind '${foreign.mount}/proc/meminfo' /proc/meminfo && exec "$@"`;
  const agent = [
    process.execPath,
    cliPath,
    'agent',
    '--lxcfs-root',
    node.anchor,
    '--fuse-mount',
    node.fuseMount,
    '--remount-helper',
    helperPath,
    '--health-port',
    '0',
  ];
  const run = await promisify(execFile)(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...agent],
    { timeout: 20_000 },
  ).then(
    () => ({ code: 0, output: '' }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      output: `${err.stdout}${err.stderr}`,
    }),
  );
  assert.notEqual(run.code, 0);
  assert.match(
    run.output,
    /lxcfs not started: \/proc\/meminfo in the agent's mount namespace is a fuse.lxcfs mount/,
  );
  assert.deepEqual(findLxcfsServing('/proc', node.fuseMount), [], 'no lxcfs of the agent runs');
});
