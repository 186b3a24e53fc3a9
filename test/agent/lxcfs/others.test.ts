// lxcfs processes other than the agent's: found by command name in a procfs (a scratch one written here,
// and a real lxcfs of this host), each described with what it is and how to stop it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  findOtherLxcfs,
  otherLxcfsProblems,
  systemdUnit,
} from '../../../src/agent/lxcfs/others.js';
import { waitUntil } from '../../helpers/wait.js';

const POD = '0b6c5a1e-1f2d-4c3b-9a8e-7d6c5b4a3f21';

/** A procfs with the three files findOtherLxcfs reads, per pid. */
function fakeProc(
  processes: Record<number, { comm: string; argv: string[]; cgroup: string }>,
): string {
  const proc = mkdtempSync(join(tmpdir(), 'fake-proc-'));
  for (const [pid, p] of Object.entries(processes)) {
    mkdirSync(join(proc, pid));
    writeFileSync(join(proc, pid, 'comm'), `${p.comm}\n`);
    writeFileSync(join(proc, pid, 'cmdline'), `${p.argv.join('\0')}\0`);
    writeFileSync(join(proc, pid, 'cgroup'), p.cgroup);
  }
  mkdirSync(join(proc, 'self'));
  return proc;
}

describe('other lxcfs processes', () => {
  it('are found by command name, ours (on our FUSE mount) and the remount helper left out', () => {
    const proc = fakeProc({
      410: {
        comm: 'lxcfs',
        argv: ['/usr/bin/lxcfs', '/var/lib/lxcfs'],
        cgroup: '0::/system.slice/lxcfs.service\n',
      },
      520: {
        comm: 'lxcfs',
        argv: [
          'lxcfs',
          '-f',
          '-p',
          '/run/lxcfs-webhook/lxcfs.pid',
          '--enable-cfs',
          '/run/lxcfs-webhook/fuse',
        ],
        cgroup: '0::/kubepods.slice/x\n',
      },
      630: {
        comm: 'lxcfs',
        argv: ['/usr/local/bin/lxcfs', '-l', '/var/lib/lxc/lxcfs'],
        cgroup: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replaceAll('-', '_')}.slice/cri-containerd-${'a'.repeat(64)}.scope\n`,
      },
      740: {
        comm: 'lxcfs-remount',
        argv: ['/app/native/build/lxcfs-remount', 'watch'],
        cgroup: '0::/\n',
      },
      850: {
        comm: 'lxcfs',
        argv: ['lxcfs', '/srv/lxcfs'],
        cgroup: '0::/user.slice/user-0.slice/session-3.scope\n',
      },
    });
    try {
      assert.deepEqual(findOtherLxcfs(proc, '/run/lxcfs-webhook/fuse'), [
        {
          pid: 410,
          cgroup: '/system.slice/lxcfs.service',
          mountPoint: '/var/lib/lxcfs',
          unit: 'lxcfs.service',
        },
        {
          pid: 630,
          cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replaceAll('-', '_')}.slice/cri-containerd-${'a'.repeat(64)}.scope`,
          mountPoint: '/var/lib/lxc/lxcfs',
          podUid: POD,
        },
        { pid: 850, cgroup: '/user.slice/user-0.slice/session-3.scope', mountPoint: '/srv/lxcfs' },
      ]);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it("names the node's service and how to disable it, another install's pod, or the cgroup", () => {
    assert.equal(systemdUnit('/system.slice/lxcfs.service'), 'lxcfs.service');
    assert.equal(systemdUnit('/user.slice/user-0.slice/session-3.scope'), undefined);
    const [service, pod, other] = otherLxcfsProblems([
      {
        pid: 410,
        cgroup: '/system.slice/lxcfs.service',
        mountPoint: '/var/lib/lxcfs',
        unit: 'lxcfs.service',
      },
      { pid: 630, cgroup: '/kubepods.slice/…', podUid: POD },
      { pid: 850, cgroup: '/user.slice/user-0.slice/session-3.scope', mountPoint: '/srv/lxcfs' },
    ]);
    assert.match(
      service!,
      /^another lxcfs \(pid 410 on \/var\/lib\/lxcfs\) runs as the node's lxcfs\.service: .*clears the node's cgroup2 options.*; on the node: systemctl disable --now lxcfs\.service \(then umount -l \/var\/lib\/lxcfs if it stays\)$/,
    );
    assert.match(
      pod!,
      new RegExp(
        `^another lxcfs \\(pid 630\\) runs in pod ${POD} \\(another LXCFS DaemonSet\\?\\): .*lxcfs-webhook audit`,
      ),
    );
    assert.match(
      other!,
      /^another lxcfs \(pid 850 on \/srv\/lxcfs\) runs in cgroup \/user\.slice\/user-0\.slice\/session-3\.scope: .*; stop it$/,
    );
  });

  it('finds a real lxcfs of this host that is not on our FUSE mount', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'other-lxcfs-'));
    mkdirSync(join(dir, 'mnt'));
    const lxcfs = spawn('lxcfs', ['-f', '-p', join(dir, 'pid'), join(dir, 'mnt')], {
      stdio: 'ignore',
    });
    try {
      const found = await waitUntil('the lxcfs is seen', () => {
        const others = findOtherLxcfs('/proc', join(dir, 'elsewhere'));
        return others.some((o) => o.pid === lxcfs.pid) && others;
      });
      assert.deepEqual(found.find((o) => o.pid === lxcfs.pid)?.mountPoint, join(dir, 'mnt'));
      assert.ok(
        !findOtherLxcfs('/proc', join(dir, 'mnt')).some((o) => o.pid === lxcfs.pid),
        'ours when it serves our FUSE mount',
      );
    } finally {
      lxcfs.kill('SIGKILL');
      await new Promise((r) => lxcfs.once('exit', r));
      try {
        execFileSync('umount', ['-l', join(dir, 'mnt')]);
      } catch {
        // not mounted any more
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
