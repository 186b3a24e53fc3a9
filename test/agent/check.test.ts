// `lxcfs-webhook check node` against a real agent, lxcfs and container.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { DEFAULT_FILES } from '../../src/config/defaults.js';
import { LIMITS, TestNode } from '../helpers/node.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { waitUntil } from '../helpers/wait.js';

const node = new TestNode();
after(() => node.cleanup());

function check(...extra: string[]): Promise<CliResult> {
  return runCli(['check', ...extra, ...node.pathFlags]);
}

test('check node: a healthy node is one screen ending in OK, exit 0; a broken one lists problems, exit 1', async () => {
  const agent = await node.startAgent();
  await agent.waitReady();
  const c = await node.container({ name: 'c', ...LIMITS, files: DEFAULT_FILES });
  await waitUntil(
    'the container covered',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) === 1,
  );

  const healthy = await check('node');
  // lxcfs instances of other tests on a shared machine are other lxcfs to this check: nothing else may be wrong.
  const foreign = healthy.stdout.split('\n').filter((l) => l.startsWith('  - another lxcfs (pid '));
  if (foreign.length === 0) assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
  else
    assert.equal(
      healthy.stdout.split('PROBLEMS:\n')[1]?.trim().split('\n').length,
      foreign.length,
      healthy.stdout,
    );
  const version = /^[\d.]+/.exec(
    execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'lxcfs'], { encoding: 'utf8' }),
  )?.[0];
  assert.match(
    healthy.stdout,
    new RegExp(
      `^lxcfs       running \\(pid ${node.lxcfsPid()}, version ${version}\\), answering in \\d+ ms$`,
      'm',
    ),
  );
  assert.match(
    healthy.stdout,
    /^cgroup2     \/sys\/fs\/cgroup\S* \S+ \((systemd's|PID 1 is not systemd: not compared)\)$/m,
  );
  assert.match(healthy.stdout, /^others      (no other lxcfs|lxcfs pid \d+ .*)$/m);
  assert.match(healthy.stdout, /^anchor      .*: tmpfs; proc live, sys live$/m);
  assert.match(healthy.stdout, /^remount     supported$/m);
  assert.match(healthy.stdout, /^containers  1 with lxcfs files, 0 stale, 0 missing$/m);
  assert.match(
    healthy.stdout,
    new RegExp(
      `^reads       ${DEFAULT_FILES.length} files read inside 1 sampled containers, 0 failed$`,
      'm',
    ),
  );
  if (foreign.length === 0) assert.match(healthy.stdout, /\nOK\n$/);

  // the agent and its lxcfs die: the node is broken until the agent is back
  const lxcfs = node.lxcfsPid();
  agent.kill('SIGKILL');
  process.kill(lxcfs, 'SIGKILL');
  await agent.exited;
  const broken = await check('node');
  assert.equal(broken.code, 1, broken.stdout + broken.stderr);
  assert.match(broken.stdout, /^lxcfs       not running$/m);
  assert.match(broken.stdout, /proc dead, sys dead/);
  assert.match(
    broken.stdout,
    new RegExp(`containers  1 with lxcfs files, ${DEFAULT_FILES.length} stale, 0 missing`),
  );
  assert.match(
    broken.stdout,
    new RegExp(
      `^  pod ${c.podUid} container ${c.containerId.slice(0, 12)}: stale cpuinfo, diskstats, .*meminfo.*online  \\(mnt:\\[\\d+\\], pid ${c.pid}\\)$`,
      'm',
    ),
  );
  assert.match(
    broken.stdout,
    /PROBLEMS:\n  - no lxcfs runs and .*\(kubectl -n lxcfs logs ds\/lxcfs-agent\)\n/,
  );
  const problems = broken.stdout
    .split('PROBLEMS:\n')[1]!
    .split('\n')
    .filter((l) => l.startsWith('  - '));
  assert.equal(
    new Set(problems.map((l) => l.split(':')[0])).size,
    problems.length,
    `no two problem lines about the same thing:\n${problems.join('\n')}`,
  );
});

test('check node: files that mountinfo shows live but that do not answer inside a container are a problem', async () => {
  // A hung lxcfs the agent has not killed yet: every mount is on the live connection, no read answers.
  const agent = await node.startAgent(['--hang-grace', '5m']);
  await agent.waitReady();
  const c = await node.container({ name: 'hung', ...LIMITS, files: DEFAULT_FILES });
  await waitUntil(
    'the container covered',
    async () => (await agent.metric('lxcfs_webhook_agent_containers_covered')) >= 1,
  );
  const lxcfs = node.lxcfsPid();
  process.kill(lxcfs, 'SIGSTOP');
  try {
    const hung = await check('node');
    assert.equal(hung.code, 1, hung.stdout + hung.stderr);
    assert.match(
      hung.stdout,
      /^containers  \d+ with lxcfs files, 0 stale, 0 missing$/m,
      'mountinfo alone sees nothing wrong',
    );
    assert.match(
      hung.stdout,
      new RegExp(
        `^  pod ${c.podUid} container ${c.containerId.slice(0, 12)}: /proc/\\S+ no answer within \\d+ ms`,
        'm',
      ),
    );
    assert.match(hung.stdout, /- \d+ of \d+ lxcfs files read inside \d+ sampled containers failed/);
  } finally {
    process.kill(lxcfs, 'SIGCONT');
  }
});

test('check without "node" says what to do, exit 2', async () => {
  const result = await check();
  assert.equal(result.code, 2);
  assert.match(result.stderr, /use: lxcfs-webhook check node \[E_CONFIG\]/);
});
