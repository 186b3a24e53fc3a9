import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { after, test } from 'node:test';
import { listContainerNamespaces } from '../../src/agent/namespaces.js';
import { TestNode } from '../helpers/node.js';

const node = new TestNode();
after(() => node.cleanup());

test('finds every container namespace with its init as representative, never the host or the agent', async () => {
  const a = await node.container({ name: 'a' });
  const b = await node.container({ name: 'b' });
  const namespaces = listContainerNamespaces('/proc');

  for (const c of [a, b]) {
    const mntNs = readlinkSync(`/proc/${c.pid}/ns/mnt`);
    const found = namespaces.find((ns) => ns.mntNs === mntNs);
    assert.ok(found, `namespace of ${c.spec.name} found`);
    // unshare(1) itself sits in the new mount namespace but not in the new pid namespace: never the representative
    assert.equal(found.pid, c.pid);
    assert.ok(found.pids.length >= 2, 'the runtime process is listed with the container');
  }
  const own = readlinkSync('/proc/self/ns/mnt');
  assert.ok(namespaces.every((ns) => ns.mntNs !== own), "the agent's own namespace is skipped");
  // the host's (pid 1's) is skipped too; where pid 1's namespace is readable, check that
  let host: string | undefined;
  try {
    host = readlinkSync('/proc/1/ns/mnt');
  } catch {
    // a sandbox may hide pid 1
  }
  if (host !== undefined) assert.ok(namespaces.every((ns) => ns.mntNs !== host), "the host's namespace is skipped");
});
