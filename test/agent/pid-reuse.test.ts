// The PID-reuse race of issue 17, reproduced against the real agent in a layout like the DaemonSet's,
// inside a stand-in host (test/helpers/standin-host.ts) so that a failure can only touch the stand-in:
// the agent plans to put a container's missing lxcfs file back; while its (slowed) helper waits, the
// container's process is killed and a process of the host takes its pid. Entering "by pid" would mount
// lxcfs over the host's /proc/meminfo (on a real node lxcfs then reads its own file and the node hangs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import type { Mount } from '../../src/agent/host/mountinfo.js';
import { ALLOWED_FILES } from '../../src/config/defaults.js';
import { helperPath, TestNode } from '../helpers/node.js';
import { waitUntil } from '../helpers/wait.js';
import { StandInHost, writeSlowHelper } from '../helpers/standin-host.js';

const line = (m: Mount) => `${m.mountId} ${m.dev} ${m.root} ${m.mountPoint} ${m.fsType}`;

/**
 * The stand-in host's mounts outside the scratch directory (where the agent legitimately mounts). Other
 * tests on the machine may unmount their own scratch mounts, copied in when the stand-in was made, so
 * "untouched" is: no mount added, and the same mounts at and above the files the agent mounts on.
 */
function hostTable(host: StandInHost, dir: string): { all: Set<string>; atTargets: string[] } {
  const outside = host
    .mounts()
    .filter((m) => m.mountPoint !== dir && !m.mountPoint.startsWith(`${dir}/`));
  const onTheWay = new Set([
    '/',
    '/proc',
    '/sys',
    ...ALLOWED_FILES.flatMap((f) => [f, dirname(f)]),
  ]);
  return {
    all: new Set(outside.map(line)),
    atTargets: outside.filter((m) => onTheWay.has(m.mountPoint)).map(line),
  };
}

test('a pid reused by a host process while the helper is on its way: the host is not entered, the refusal is logged', async (t) => {
  const node = new TestNode();
  const host = await StandInHost.start(node.dir);
  t.after(async () => {
    await host.stop();
    await node.cleanup();
  });
  const slowHelper = join(node.dir, 'slow-helper.sh');
  const marker = join(node.dir, 'swap-started');
  writeSlowHelper(slowHelper, helperPath, marker, 3);

  const agent = host.startAgent([
    '--lxcfs-root',
    node.anchor,
    '--fuse-mount',
    node.fuseMount,
    '--remount-helper',
    slowHelper,
    '--health-port',
    '0',
    '--sweep-interval',
    '1s',
    '--probe-interval',
    '5s',
    '--hang-grace',
    '20s',
  ]);
  t.after(() => agent.kill('SIGKILL'));
  agent.port = Number((await agent.waitForLog((l) => l.msg === 'agent starting')).healthPort);
  await agent.waitReady();
  const container = await host.container('victim', node.anchor, ['/proc/meminfo']);
  await waitUntil(
    'the agent covers the container',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 1,
  );
  const before = hostTable(host, node.dir);

  const logsBefore = agent.logs.length;
  // The container drops its lxcfs file: the agent plans to attach it again, through the slowed helper.
  execFileSync('nsenter', ['-t', String(container.hostPid), '-m', '-p', 'umount', '/proc/meminfo']);
  await waitUntil('the helper is on its way', () => existsSync(marker), { timeoutMs: 10_000 });
  assert.match(
    readFileSync(marker, 'utf8'),
    new RegExp(`--ns /proc/${container.pid} `),
    "the helper is sent to the container's pid",
  );

  // The container's process ends, and a process of the host takes its pid.
  const exited = new Promise((resolve) => container.runtime.once('exit', resolve));
  process.kill(container.hostPid, 'SIGKILL');
  await exited;
  await host.processAtPid(container.pid);

  const outcome = await agent.waitForLog(
    (l) =>
      [
        'remounted',
        'remount failed; retried at the next sweep',
        'namespace not entered: remount refused',
      ].includes(l.msg),
    15_000,
    logsBefore,
  );
  t.diagnostic(`agent: ${JSON.stringify(outcome)}`);
  const after = hostTable(host, node.dir);
  assert.deepEqual(
    [...after.all].filter((m) => !before.all.has(m)),
    [],
    'no mount was added to the stand-in host',
  );
  assert.deepEqual(
    after.atTargets,
    before.atTargets,
    "the stand-in host's /proc and /sys are untouched",
  );

  assert.equal(outcome.msg, 'namespace not entered: remount refused');
  assert.equal(outcome.pid, container.pid);
  assert.equal(outcome.notEntered, 'other-process');
  assert.match(String(outcome.err), new RegExp(`pid ${container.pid} is another process`));
  assert.equal(
    await agent.metric(
      'lxcfs_webhook_agent_namespaces_not_entered_total',
      'reason="other-process"',
    ),
    1,
  );
  assert.equal(await agent.metric('lxcfs_webhook_agent_remounts_total', 'result="done"'), 0);
});
