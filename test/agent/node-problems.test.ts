// nodeProblems, the one health function of /readyz and `check node`, on plain facts: each line says
// something the others do not, and its hints name the install's real objects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeProblems, type NodeFacts } from '../../src/agent/node-health.js';

const healthy: NodeFacts = {
  anchorRoot: '/var/lib/lxcfs',
  fuseMount: '/run/lxcfs-webhook/fuse',
  lxcfsRunning: true,
  fuseMounted: true,
  probe: { ok: true, ms: 1 } as NodeFacts['probe'],
  anchor: { tmpfs: true, binds: { proc: 'live', sys: 'live' } } as NodeFacts['anchor'],
};

describe('nodeProblems', () => {
  it('is empty on a healthy node', () => assert.deepEqual(nodeProblems(healthy), []));

  it('says lxcfs is down and its mount gone in one line, naming the real namespace and DaemonSet', () => {
    const problems = nodeProblems({
      ...healthy,
      lxcfsRunning: false,
      fuseMounted: false,
      probe: undefined,
      anchor: { tmpfs: true, binds: { proc: 'dead', sys: 'dead' } } as NodeFacts['anchor'],
    });
    assert.deepEqual(problems, [
      'no lxcfs runs and nothing is mounted on /run/lxcfs-webhook/fuse: is the agent running? (kubectl -n lxcfs logs ds/lxcfs-agent)',
      '/var/lib/lxcfs/proc and /var/lib/lxcfs/sys are dead lxcfs mounts: new pods cannot start',
    ]);
  });

  it('tells a dead mount left behind from none, and one unbound directory from two', () => {
    const problems = nodeProblems({
      ...healthy,
      lxcfsRunning: false,
      anchor: { tmpfs: true, binds: { proc: 'absent', sys: 'live' } } as NodeFacts['anchor'],
    });
    assert.deepEqual(problems, [
      'no lxcfs runs and a dead lxcfs mount is left on /run/lxcfs-webhook/fuse: is the agent running? (kubectl -n lxcfs logs ds/lxcfs-agent)',
      '/var/lib/lxcfs/proc is not bound to lxcfs: new pods cannot start',
    ]);
  });

  it('says which sampled containers were not entered, and why, instead of passing them', () => {
    const refused = [
      { notEntered: 'other-process', error: 'pid 42 is another process now (…): not entered' },
    ];
    const reads = { files: 0, containers: 1, unreadable: [], notEntered: refused } as never;
    assert.deepEqual(nodeProblems({ ...healthy, containers: { stale: 0, missing: 0, reads } }), [
      '1 sampled containers were not entered (other-process: pid 42 is another process now (…): not entered): their files ' +
        'were not read; run the check again, and if "host-unknown", run it where the host\'s /proc/1 can be read (privileged, hostPID)',
    ]);
  });

  it('names the agent log by its real names when reads inside containers fail', () => {
    const reads = { files: 8, containers: 1, unreadable: [{}] } as never;
    const [line] = nodeProblems({ ...healthy, containers: { stale: 0, missing: 0, reads } });
    assert.match(line ?? '', /see the agent log \(kubectl -n lxcfs logs ds\/lxcfs-agent\)$/);
    assert.doesNotMatch(line ?? '', /<ns>|<agent>/);
  });

  describe('the node around lxcfs (check node only)', () => {
    const reset = {
      mountPoint: '/sys/fs/cgroup',
      options: ['rw'],
      kernelFeatures: ['nsdelegate', 'memory_recursiveprot'],
      initIsSystemd: true,
    };
    const systemds = { ...reset, options: ['rw', 'nsdelegate', 'memory_recursiveprot'] };
    const service = {
      pid: 410,
      cgroup: '/system.slice/lxcfs.service',
      mountPoint: '/var/lib/lxcfs',
      unit: 'lxcfs.service',
    };
    const version = (text: string) => ({
      major: Number(text[0]),
      minor: 0,
      patch: Number(text.at(-1)),
      text,
    });

    it('is nothing on a node whose cgroup2 is as systemd mounted it and with no other lxcfs', () => {
      assert.deepEqual(
        nodeProblems({
          ...healthy,
          cgroup2: systemds,
          otherLxcfs: [],
          lxcfsVersion: version('7.0.0'),
        }),
        [],
      );
    });

    it('blames our own lxcfs when it is a release that clears the options', () => {
      const [line] = nodeProblems({
        ...healthy,
        cgroup2: reset,
        otherLxcfs: [],
        lxcfsVersion: version('6.0.4'),
      });
      assert.match(
        line ?? '',
        /without nsdelegate, memory_recursiveprot that systemd mounts it with: this agent's lxcfs 6\.0\.4 clears them each time it starts \(lxc\/lxcfs#681, fixed in 6\.0\.6\): run an lxcfs >= 6\.0\.6/,
      );
      assert.match(
        line ?? '',
        /mount -o remount,nsdelegate,memory_recursiveprot \/sys\/fs\/cgroup$/,
      );
    });

    it('points at the other lxcfs when ours is not such a release, each on its own line', () => {
      const problems = nodeProblems({
        ...healthy,
        cgroup2: reset,
        otherLxcfs: [service],
        lxcfsVersion: version('7.0.0'),
      });
      assert.equal(problems.length, 2);
      assert.match(
        problems[0]!,
        /: another lxcfs on this node \(see below\) clears them each time it starts if it is older than 6\.0\.6/,
      );
      assert.match(
        problems[1]!,
        /^another lxcfs \(pid 410 on \/var\/lib\/lxcfs\) runs as the node's lxcfs\.service: .*systemctl disable --now lxcfs\.service/,
      );
    });

    it('reports another lxcfs even while the options are intact (a 6.0.6+ one, or one that has not restarted)', () => {
      assert.equal(
        nodeProblems({ ...healthy, cgroup2: systemds, otherLxcfs: [service] }).length,
        1,
      );
    });
  });
});
