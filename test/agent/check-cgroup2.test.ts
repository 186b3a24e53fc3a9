// `check node` on a node whose cgroup2 lacks the options systemd mounts it with, in a stand-in host: its
// PID 1 is named systemd and its /sys/fs/cgroup is a bind of this machine's one cgroup2 hierarchy, whose
// superblock options are what the kernel prints. The options themselves are never changed here: the
// kernel applies cgroup2 options from the initial cgroup namespace to the machine's one hierarchy, so a
// reset cannot be made anywhere but on the real node (the VM suite resets them for real in its guests,
// with Debian's lxcfs.service and the guests' lxcfs as a unit, and runs the restore check node prints).
// This machine's hierarchy (cgroup v1 hybrid, /sys/fs/cgroup/unified) shows `rw` or `rw,nsdelegate`:
// mounted where a v2 node has it, that is a node without systemd's options.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cgroup2Mount, SYSTEMD_CGROUP2_OPTIONS } from '../../src/agent/host/cgroup2-options.js';
import { runCli } from '../helpers/run-cli.js';
import { StandInHost } from '../helpers/standin-host.js';
import { waitUntil } from '../helpers/wait.js';

/** This machine's cgroup2 mount, as this process sees it. */
function machineCgroup2(): { mountPoint: string; options: string[] } {
  const mount = cgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
  assert.ok(mount, 'this machine has no cgroup2 mount');
  return mount;
}

/** A stand-in node whose /sys/fs/cgroup is this machine's cgroup2, with an init of that name. */
async function standInNode(initName: string): Promise<{ host: StandInHost; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'check-cgroup2-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'anchor'));
  mkdirSync(join(dir, 'fuse'));
  const host = await StandInHost.start(dir, {
    // Its own cgroup namespace: even a cgroup2 mount made inside could not change the machine's options.
    cgroupNamespace: true,
    setup: [`mount --bind '${machineCgroup2().mountPoint}' /sys/fs/cgroup`],
    initName,
  });
  after(() => host.stop());
  return { host, dir };
}

function checkNode(host: StandInHost, dir: string) {
  return runCli(
    [
      'check',
      'node',
      '--proc',
      host.proc,
      '--lxcfs-root',
      join(dir, 'anchor'),
      '--fuse-mount',
      join(dir, 'fuse'),
    ],
    { timeoutMs: 60_000 },
  );
}

const kernelFeatures = readFileSync('/sys/kernel/cgroup/features', 'utf8').split('\n');

describe('check node: the cgroup2 options of a stand-in node', () => {
  const before = machineCgroup2().options;
  after(() =>
    assert.deepEqual(machineCgroup2().options, before, "this machine's cgroup2 options changed"),
  );
  const missing = SYSTEMD_CGROUP2_OPTIONS.filter(
    (o) => kernelFeatures.includes(o) && !before.includes(o),
  );
  const needsMissing = {
    skip:
      missing.length === 0 &&
      "this machine's cgroup2 has systemd's options: a stand-in without them would need the machine's own changed",
  };

  it(
    "reports the options systemd's cgroup2 has and this one lacks, exits 1, and prints the remount that restores them",
    needsMissing,
    async () => {
      const { host, dir } = await standInNode('systemd');
      assert.equal(readFileSync(`${host.proc}/1/comm`, 'utf8').trim(), 'systemd');
      // What the stand-in's PID 1 sees: the machine's superblock options, at /sys/fs/cgroup.
      const seen = cgroup2Mount(readFileSync(`${host.proc}/1/mountinfo`, 'utf8'));
      assert.deepEqual(seen, { mountPoint: '/sys/fs/cgroup', options: before });

      const r = await checkNode(host, dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `^cgroup2     /sys/fs/cgroup ${before.join(',')} \\(WITHOUT ${missing.join(', ')}\\)$`,
          'm',
        ),
      );
      const problem = r.stdout
        .split('\n')
        .find((l) => l.startsWith("  - the node's cgroup2 (/sys/fs/cgroup)"));
      assert.ok(problem, `no cgroup2 problem line: ${r.stdout}`);
      assert.ok(
        problem.includes(
          `has options ${before.join(',')}, without ${missing.join(', ')} that systemd mounts it with: `,
        ),
        problem,
      );
      // No lxcfs runs in the stand-in: the general cause, and the fix that keeps the options still there.
      assert.match(problem, /an lxcfs older than 6\.0\.6 started in the node's cgroup namespace/);
      const keep = before.filter((o) => o !== 'rw' && o !== 'ro');
      assert.ok(
        problem.endsWith(
          `(as root, outside containers): mount -o remount,${[...keep, ...missing].join(',')} /sys/fs/cgroup`,
        ),
        problem,
      );
    },
  );

  it(
    'with another lxcfs running on the node, blames it in the cgroup2 line and names it on a line of its own',
    needsMissing,
    async () => {
      const { host, dir } = await standInNode('systemd');
      // Debian's lxcfs on a mount point of its own, inside the stand-in (its cgroup namespace is the
      // stand-in's, so its cgroup2 mount cannot clear the machine's options); it ends with the stand-in.
      mkdirSync(join(dir, 'other'));
      const argv = host.inside(['lxcfs', '-f', '-p', join(dir, 'other.pid'), join(dir, 'other')]);
      const other = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      after(() => void other.kill('SIGKILL'));
      await waitUntil('the other lxcfs serves its mount', () =>
        readFileSync(`/proc/${host.initPid}/mountinfo`, 'utf8').includes(` ${join(dir, 'other')} `),
      );
      const pid = Number(readFileSync(join(dir, 'other.pid'), 'utf8').trim());

      const r = await checkNode(host, dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`^others      lxcfs pid ${pid} .* on ${join(dir, 'other')}$`, 'm'),
      );
      assert.match(
        r.stdout,
        new RegExp(
          `^  - the node's cgroup2 \\(/sys/fs/cgroup\\) has options ${before.join(',')}, without ${missing.join(', ')} that systemd mounts it with: another lxcfs on this node \\(see below\\) clears them each time it starts if it is older than 6\\.0\\.6`,
          'm',
        ),
      );
      assert.match(
        r.stdout,
        new RegExp(`^  - another lxcfs \\(pid ${pid} on ${join(dir, 'other')}\\)`, 'm'),
      );
    },
  );

  it('compares nothing when the node is not run by systemd (no options to expect)', async () => {
    const { host, dir } = await standInNode('init');
    const r = await checkNode(host, dir);
    assert.match(
      r.stdout,
      new RegExp(
        `^cgroup2     /sys/fs/cgroup ${before.join(',')} \\(PID 1 is not systemd: not compared\\)$`,
        'm',
      ),
    );
    assert.doesNotMatch(r.stdout, /the node's cgroup2/);
  });
});
