import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { after, test } from 'node:test';
import { parseMountinfo } from '../../../src/agent/host/mountinfo.js';
import { findDeadDescriptors } from '../../../src/agent/host/open-fds.js';
import { remount } from '../../../src/agent/repair/remount.js';
import type { TestContainer } from '../../helpers/container.js';
import { chosenProcess, helperPath, LIMITS, TestNode } from '../../helpers/node.js';

const node = new TestNode();
after(() => node.cleanup());

function meminfoMountId(c: TestContainer): number {
  return parseMountinfo(c.mountinfo()).find((m) => m.mountPoint === '/proc/meminfo')!.mountId;
}

test('finds a process holding a descriptor through a dead lxcfs mount, before and after the remount', async () => {
  let lxcfs = await node.lxcfsWithAnchor();
  const holder = await node.container({
    name: 'holder',
    ...LIMITS,
    files: ['/proc/meminfo'],
    holdOpen: '/proc/meminfo',
  });
  const other = await node.container({ name: 'other', ...LIMITS, files: ['/proc/meminfo'] });
  const deadIds = new Set([meminfoMountId(holder), meminfoMountId(other)]);
  const expected = [{ pid: holder.pid, fd: 3, comm: 'sleep', mountId: meminfoMountId(holder) }];

  lxcfs.kill('SIGKILL');
  await lxcfs.exited;
  assert.deepEqual(findDeadDescriptors('/proc', [holder.pid, other.pid], deadIds), expected);

  // Swapped out, the dead mount is detached and the descriptor's path reads "/": the mount id still matches.
  lxcfs = await node.lxcfsWithAnchor();
  const [outcome] = await remount(
    [
      {
        ...chosenProcess(holder.pid),
        targets: [
          { target: '/proc/meminfo', lxcfsPath: '/proc/meminfo', readOnly: false, state: 'stale' },
        ],
      },
    ],
    {
      helper: helperPath,
      proc: '/proc',
      fuseMount: node.fuseMount,
      liveDev: lxcfs.dev,
      parallelism: 1,
      batchSize: 1,
      timeoutMs: 5000,
    },
  );
  assert.equal(outcome?.ok, true, outcome?.error);
  assert.equal(readlinkSync(`/proc/${holder.pid}/fd/3`), '/');
  assert.deepEqual(findDeadDescriptors('/proc', [holder.pid, other.pid], deadIds), expected);
  assert.deepEqual(
    findDeadDescriptors('/proc', [holder.pid], new Set([meminfoMountId(holder)])),
    [],
    'the live mount is not dead',
  );
});
