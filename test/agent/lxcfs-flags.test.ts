// The flags the agent starts the real lxcfs of this host with, chosen by its version: --enable-pidfd
// where the release has it but does not default to it, -l (per-container loadavg) unless turned off, and
// an operator's flag this lxcfs would reject refused at start instead of lxcfs exiting in a loop.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLxcfsVersion, resetsCgroupOptions } from '../../src/agent/lxcfs/version.js';
import { scratchNode, startReadyAgent, withLxcfs } from '../helpers/node.js';
import { waitUntil } from '../helpers/wait.js';

const version = readLxcfsVersion('lxcfs', 5000)!;
const argvOf = (pid: number) =>
  readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
/** `r/t` of /proc/loadavg: t, the number of threads it counts. */
const loadavgThreads = (text: string) => Number(/ \d+\/(\d+) /.exec(text)?.[1]);

test(`lxcfs ${version.text} starts with the flags its version takes, and -l gives containers their own loadavg`, async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node);
  const chosen = agent.logs.find((l) => l.msg === 'lxcfs version and flags');
  assert.equal(chosen?.lxcfsVersion, version.text);
  const argv = argvOf(node.lxcfsPid());
  assert.ok(argv.includes('--enable-cfs') && argv.includes('-l'), argv.join(' '));
  assert.equal(
    argv.includes('--enable-pidfd'),
    version.major >= 4 && version.major < 7,
    argv.join(' '),
  );
  assert.equal(
    agent.logs.some(
      (l) => l.level === 'warn' && /clears the node's cgroup2 mount options/.test(l.msg),
    ),
    resetsCgroupOptions(version),
  );

  const c = await node.container({ name: 'loadavg', ...withLxcfs });
  const own = (await c.read('/proc/loadavg')).stdout;
  assert.ok(
    loadavgThreads(own) < 20,
    `a container of one process counts its own threads, not the node's: ${own}`,
  );
});

test("--lxcfs-loadavg=false: no -l, and /proc/loadavg through lxcfs is the node's", async (t) => {
  const node = scratchNode(t);
  const agent = await startReadyAgent(node, ['--lxcfs-loadavg=false']);
  assert.ok(!argvOf(node.lxcfsPid()).includes('-l'), argvOf(node.lxcfsPid()).join(' '));
  assert.equal(
    agent.logs.find((l) => l.msg === 'lxcfs version and flags')?.lxcfsArgs,
    argvOf(node.lxcfsPid()).slice(4, -1).join(' '),
  );
  const c = await node.container({ name: 'loadavg', ...withLxcfs });
  const nodeThreads = loadavgThreads(readFileSync('/proc/loadavg', 'utf8'));
  const seen = loadavgThreads((await c.read('/proc/loadavg')).stdout);
  assert.ok(
    nodeThreads > 20 && Math.abs(seen - nodeThreads) <= nodeThreads * 0.3,
    `node ${nodeThreads} threads, the container read ${seen}`,
  );
});

test('an --lxcfs-args flag this lxcfs rejects stops the agent at start, naming the flag: exit 2', async (t) => {
  const node = scratchNode(t);
  const rejected = version.major >= 7 ? '--enable-cgroup' : '--enable-psi-poll';
  const agent = node.spawnAgent([`--lxcfs-args=--enable-cfs ${rejected}`]);
  const exit = await agent.exited;
  assert.equal(exit.code, 2, agent.stderr);
  assert.match(
    agent.stderr.trim(),
    new RegExp(
      `^lxcfs-webhook agent: --lxcfs-args: lxcfs ${version.text.replaceAll('.', '\\.')} rejects ${rejected} \\(.*\\) and would exit at once: remove it \\[E_CONFIG\\]$`,
    ),
  );
  await waitUntil(
    'nothing was mounted',
    () => !node.ownMounts().some((m) => m.mountPoint === node.fuseMount),
    { timeoutMs: 1000 },
  );
});

test("an lxcfs 7.0 on a node whose /sys/fs/cgroup is not cgroup v2 stops the agent (it would serve the node's values), exit 2", async (t) => {
  // lxcfs 7.0.0 on a hybrid host mounts and serves the node's own files (tried with the agent image's);
  // here the host's lxcfs answers --version as 7.0.0.
  const node = scratchNode(t);
  const seven = join(node.dir, 'lxcfs-7');
  writeFileSync(
    seven,
    '#!/bin/sh\nif [ "$1" = --version ]; then echo \'"7.0.0"\' >&2; exit 0; fi\nexec lxcfs "$@"\n',
  );
  chmodSync(seven, 0o755);
  const agent = node.spawnAgent(['--lxcfs-bin', seven]);
  if (statfsSync('/sys/fs/cgroup').type === 0x63677270) {
    await agent.waitReady();
    assert.equal(
      agent.logs.find((l) => l.msg === 'lxcfs version and flags')?.lxcfsArgs,
      '--enable-cfs -l',
      'no --enable-pidfd for 7.0',
    );
    return;
  }
  const exit = await agent.exited;
  assert.equal(exit.code, 2, agent.stderr);
  assert.match(
    agent.stderr.trim(),
    /^lxcfs-webhook agent: --lxcfs-bin: lxcfs 7\.0\.0 supports cgroup v2 only, and \/sys\/fs\/cgroup on this node is cgroup v1 or hybrid: it would serve every container the node's own values; .* \[E_AGENT\]$/,
  );
});
