import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { listContainerNamespaces } from '../../../src/agent/host/namespaces.js';
import { TestNode } from '../../helpers/node.js';

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
  assert.ok(
    namespaces.every((ns) => ns.mntNs !== own),
    "the agent's own namespace is skipped",
  );
  // the host's (pid 1's) is skipped too; where pid 1's namespace is readable, check that
  let host: string | undefined;
  try {
    host = readlinkSync('/proc/1/ns/mnt');
  } catch {
    // a sandbox may hide pid 1
  }
  if (host !== undefined)
    assert.ok(
      namespaces.every((ns) => ns.mntNs !== host),
      "the host's namespace is skipped",
    );
});

/** A free pid below `limit` whose successor is free too (nsenter takes one, its child the next). */
function freePidPairBelow(limit: number): number {
  for (let pid = limit - 2; pid > 1000; pid--)
    if (!existsSync(`/proc/${pid}`) && !existsSync(`/proc/${pid + 1}`)) return pid;
  throw new Error(`no two free pids below ${limit}`);
}

/** `nsenter` into the container, started so that the process it runs there gets a pid below `below`. */
async function execWithLowerPid(
  containerPid: number,
  below: number,
): Promise<{ nsenter: ChildProcess; pid: number }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    // The kernel hands out the pid after ns_last_pid next; other forks on the machine may take it first.
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(freePidPairBelow(below) - 1));
    const nsenter = spawn('nsenter', ['-t', String(containerPid), '-m', '-p', 'sleep', '30'], {
      stdio: 'ignore',
    });
    let children = '';
    for (let waited = 0; children === '' && waited < 2000; waited += 10) {
      await sleep(10);
      children = readFileSync(`/proc/${nsenter.pid}/task/${nsenter.pid}/children`, 'utf8').trim();
    }
    const pid = Number(children.split(' ')[0]);
    if (pid > 0 && pid < below) return { nsenter, pid };
    nsenter.kill('SIGKILL');
  }
  throw new Error('could not start a process with a lower pid than the container init');
}

test('a process exec-ed into the container with a lower pid than its init is never the one entered', async (t) => {
  // Pids wrap around: start the container high enough that free pids lie below its init.
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  writeFileSync('/proc/sys/kernel/ns_last_pid', String(Math.floor(pidMax / 2)));
  const c = await node.container({ name: 'exec' });
  // Start times count clock ticks (10 ms): an exec in the init's own tick ties with it, and then neither
  // is older. The case here is the usual one, an exec that comes later.
  await sleep(30);
  const exec = await execWithLowerPid(c.pid, c.pid);
  t.after(() => exec.nsenter.kill('SIGKILL'));
  const mntNs = readlinkSync(`/proc/${c.pid}/ns/mnt`);
  const found = listContainerNamespaces('/proc').find((ns) => ns.mntNs === mntNs);
  assert.ok(found?.pids.includes(exec.pid), 'the exec-ed process is in the namespace');
  assert.equal(found?.pid, c.pid, 'the container init (oldest) represents it');
});
