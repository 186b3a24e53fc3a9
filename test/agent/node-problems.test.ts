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

  it('turns the agent red on a failed state save and on failed repairs, not on targets refused as not ours', () => {
    const none = { failed: 0, failedNamespaces: 0 };
    assert.deepEqual(nodeProblems({ ...healthy, agent: { repairFailures: none } }), []);
    const problems = nodeProblems({
      ...healthy,
      agent: {
        stateSaveError:
          "cannot save the agent's state to /var/lib/lxcfs/.lxcfs-webhook-agent/state.json (ENOSPC: no space left on device)",
        repairFailures: {
          failed: 3,
          failedNamespaces: 2,
          example: 'helper timed out after 5000 ms',
        },
      },
    });
    assert.deepEqual(problems, [
      "cannot save the agent's state to /var/lib/lxcfs/.lxcfs-webhook-agent/state.json (ENOSPC: no space left on device): repairs go on, but what the agent learns is lost when it restarts; free space there",
      '3 lxcfs files in 2 containers could not be remounted (helper timed out after 5000 ms): retried with backoff; see the agent log (kubectl -n lxcfs logs ds/lxcfs-agent)',
    ]);
  });

  it('says when the state filesystem is too full for the next save (check node)', () => {
    const space = {
      dir: '/var/lib/lxcfs/.lxcfs-webhook-agent',
      totalBytes: 4 << 20,
      stateBytes: 10 << 10,
    };
    assert.deepEqual(
      nodeProblems({ ...healthy, stateSpace: { ...space, freeBytes: 1 << 20 } }),
      [],
    );
    assert.deepEqual(nodeProblems({ ...healthy, stateSpace: { ...space, freeBytes: 0 } }), [
      "the agent's state filesystem /var/lib/lxcfs/.lxcfs-webhook-agent is full (0 KiB free of 4096 KiB, the state takes 10 KiB): " +
        'the agent cannot save what it learns; remove what fills it (du -a /var/lib/lxcfs/.lxcfs-webhook-agent), the agent writes only its state file there',
    ]);
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
