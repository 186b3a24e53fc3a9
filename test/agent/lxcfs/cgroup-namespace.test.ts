// The agent's cgroup-namespace handling on this host: a process in a private cgroup namespace (made with
// unshare, as podman/docker do on cgroup v2) gets lxcfs started in PID 1's, and an lxcfs left in a
// private one is reported. The real runtimes are exercised in the VM suite (test/vm/guest-suite.ts).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  lxcfsCgroupProblem,
  planCgroupNamespace,
  seesHostPids,
  wrapForCgroupNamespace,
} from '../../../src/agent/lxcfs/cgroup-namespace.js';
import { repoRoot } from '../../helpers/paths.js';

const moduleUrl = join(repoRoot, 'dist', 'src', 'agent', 'lxcfs', 'cgroup-namespace.js');

describe('cgroup namespace of lxcfs', () => {
  it('sees the host PID namespace through /proc, and refuses a procfs without it, naming hostPID', () => {
    assert.equal(seesHostPids('/proc'), true);
    assert.deepEqual(planCgroupNamespace('/proc').warnings, []);
    const fake = mkdtempSync(join(tmpdir(), 'fake-proc-'));
    try {
      assert.throws(
        () => planCgroupNamespace(fake),
        /hostPID: true \(docker\/podman: --privileged --pid host\)/,
      );
    } finally {
      rmSync(fake, { recursive: true });
    }
  });

  it('starts lxcfs as it is when the agent shares the host cgroup namespace', () => {
    const plan = planCgroupNamespace('/proc');
    const own = readlinkSync('/proc/self/ns/cgroup');
    assert.equal(plan.enter === undefined, own === plan.host);
    if (plan.enter === undefined)
      assert.deepEqual(wrapForCgroupNamespace(plan, 'lxcfs', ['-f', '/m']), [
        'lxcfs',
        ['-f', '/m'],
      ]);
  });

  it("enters PID 1's cgroup namespace from a private one, through nsenter, as the same process", () => {
    const script =
      `const m = await import(${JSON.stringify(moduleUrl)}); const p = m.planCgroupNamespace('/proc');` +
      `const [cmd, args] = m.wrapForCgroupNamespace(p, 'sh', ['-c', 'readlink /proc/self/ns/cgroup; echo $$']);` +
      `const { spawnSync } = await import('node:child_process'); const r = spawnSync(cmd, args, { encoding: 'utf8' });` +
      `console.log(JSON.stringify({ plan: p, out: r.stdout }));`;
    const out = execFileSync(
      'unshare',
      ['--cgroup', process.execPath, '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    const { plan, out: child } = JSON.parse(out) as {
      plan: { own: string; host: string; enter?: string };
      out: string;
    };
    assert.notEqual(plan.own, plan.host, 'unshare made a private cgroup namespace');
    assert.match(plan.enter ?? '', /^\/proc\/[12]\/ns\/cgroup$/);
    assert.equal(
      child.split('\n')[0],
      plan.host,
      "the started process is in the host's cgroup namespace",
    );
  });

  it('reports an lxcfs that runs in a private cgroup namespace', async () => {
    if (planCgroupNamespace('/proc').enter === undefined)
      assert.equal(lxcfsCgroupProblem('/proc', process.pid), undefined);
    const child = spawn('unshare', ['--cgroup', 'sleep', '30'], { stdio: 'ignore' });
    try {
      // unshare execs sleep in the same process once the namespace exists
      let problem: string | undefined;
      for (let i = 0; i < 100 && problem === undefined; i++) {
        problem = lxcfsCgroupProblem('/proc', child.pid!);
        if (problem === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(
        problem ?? '',
        /runs in cgroup namespace cgroup:\[\d+\], not the host's cgroup:\[\d+\]: it serves every container the node's values/,
      );
    } finally {
      child.kill('SIGKILL');
    }
  });
});
