// `lxcfs-webhook agent --uninstall` (what the clean-up DaemonSet runs) against a real agent and lxcfs:
// afterwards the node has no lxcfs process, no mount and no directory of ours left.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findLxcfsServing } from '../../src/agent/lxcfs/process.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { TestNode } from '../helpers/node.js';

function uninstall(node: TestNode): Promise<CliResult> {
  return runCli(['agent', '--uninstall', ...node.pathFlags]);
}

function assertNothingLeft(node: TestNode): void {
  const ours = node
    .ownMounts()
    .filter((m) => m.mountPoint.startsWith(node.anchor) || m.mountPoint.startsWith(node.fuseMount));
  assert.deepEqual(
    ours.map((m) => `${m.mountPoint} ${m.fsType}`),
    [],
    'no mounts left',
  );
  assert.deepEqual(findLxcfsServing('/proc', node.fuseMount), [], 'no lxcfs left');
  assert.ok(!existsSync(node.fuseMount), 'FUSE mountpoint removed');
}

describe('agent --uninstall', () => {
  const nodes: TestNode[] = [];
  after(async () => {
    for (const node of nodes) await node.cleanup();
  });

  it('removes everything after the agent stopped on SIGTERM', async () => {
    const node = new TestNode();
    nodes.push(node);
    const agent = await node.startAgent();
    await agent.waitReady();
    assert.ok(node.ownMounts().some((m) => m.mountPoint === node.anchor && m.fsType === 'tmpfs'));
    agent.kill('SIGTERM');
    assert.equal((await agent.exited).code, 0);
    assert.ok(
      node.ownMounts().some((m) => m.mountPoint === node.anchor),
      'a stopped agent keeps the anchor for its successor',
    );

    const result = await uninstall(node);
    assert.equal(result.code, 0, result.stdout);
    assertNothingLeft(node);
    assert.ok(!existsSync(node.anchor), 'anchor directory removed');
  });

  it('stops the lxcfs a killed agent left behind, and keeps files someone else put there', async () => {
    const node = new TestNode();
    nodes.push(node);
    mkdirSync(node.anchor, { recursive: true });
    writeFileSync(join(node.anchor, 'not-ours.txt'), 'keep me');
    const agent = await node.startAgent();
    await agent.waitReady();
    agent.kill('SIGKILL');
    await agent.exited;
    assert.equal(findLxcfsServing('/proc', node.fuseMount).length, 1, 'lxcfs outlived its agent');

    const result = await uninstall(node);
    assert.equal(result.code, 1, 'says something was left');
    assert.match(result.stdout, /left in place/);
    assertNothingLeft(node);
    assert.ok(existsSync(join(node.anchor, 'not-ours.txt')), 'a file that is not ours is kept');
  });
});
