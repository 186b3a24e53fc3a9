// The node's cgroup2 options against systemd's, from mountinfo lines as the kernel prints them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  cgroup2Mount,
  cgroup2OptionsProblem,
  missingSystemdOptions,
  readCgroup2Options,
  restoreCommand,
  type Cgroup2Options,
} from '../../../src/agent/host/cgroup2-options.js';

// Debian 13 guest (kernel 6.12, systemd 257): as systemd mounted it, and after lxcfs 6.0.4 started in the
// node's cgroup namespace.
const SYSTEMD = [
  '24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '27 24 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
  '28 24 0:25 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw',
].join('\n');
const RESET = SYSTEMD.replace('rw,nsdelegate,memory_recursiveprot', 'rw');
// cgroup v1 hybrid (systemd 252): v2 at /sys/fs/cgroup/unified, with nsdelegate only.
const HYBRID = [
  '33 24 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '34 33 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '35 33 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
].join('\n');
const FEATURES = ['nsdelegate', 'favordynmods', 'memory_localevents', 'memory_recursiveprot'];
const facts = (mountinfo: string, more: Partial<Cgroup2Options> = {}): Cgroup2Options => ({
  ...cgroup2Mount(mountinfo)!,
  kernelFeatures: FEATURES,
  initIsSystemd: true,
  ...more,
});

describe('cgroup2 options', () => {
  it("reads the superblock options of the node's cgroup2, not the per-mount ones", () => {
    assert.deepEqual(cgroup2Mount(SYSTEMD), {
      mountPoint: '/sys/fs/cgroup',
      options: ['rw', 'nsdelegate', 'memory_recursiveprot'],
    });
    assert.deepEqual(cgroup2Mount(HYBRID), {
      mountPoint: '/sys/fs/cgroup/unified',
      options: ['rw', 'nsdelegate'],
    });
    assert.equal(cgroup2Mount(SYSTEMD.split('\n')[0]!), undefined);
  });

  it('finds nothing missing on a node as systemd left it, both options missing after a reset', () => {
    assert.deepEqual(missingSystemdOptions(facts(SYSTEMD)), []);
    assert.deepEqual(missingSystemdOptions(facts(RESET)), ['nsdelegate', 'memory_recursiveprot']);
    assert.equal(cgroup2OptionsProblem(facts(SYSTEMD)), undefined);
  });

  it('expects only what this kernel knows, only nsdelegate on a hybrid node, nothing when PID 1 is not systemd', () => {
    assert.deepEqual(missingSystemdOptions(facts(RESET, { kernelFeatures: ['nsdelegate'] })), [
      'nsdelegate',
    ]);
    assert.deepEqual(missingSystemdOptions(facts(HYBRID)), []);
    assert.deepEqual(missingSystemdOptions(facts(HYBRID.replace('rw,nsdelegate', 'rw'))), [
      'nsdelegate',
    ]);
    assert.deepEqual(missingSystemdOptions(facts(RESET, { initIsSystemd: false })), []);
  });

  it('restores the missing options and keeps the ones the node still has (a remount clears what it does not name)', () => {
    assert.equal(
      restoreCommand(facts(RESET)),
      'mount -o remount,nsdelegate,memory_recursiveprot /sys/fs/cgroup',
    );
    assert.equal(
      restoreCommand(facts(RESET, { options: ['rw', 'favordynmods'] })),
      'mount -o remount,favordynmods,nsdelegate,memory_recursiveprot /sys/fs/cgroup',
    );
  });

  it('says what is missing, the cause when known, what it changes, and the command that restores it', () => {
    const problem = cgroup2OptionsProblem(facts(RESET), 'the cause');
    assert.equal(
      problem,
      "the node's cgroup2 (/sys/fs/cgroup) has options rw, without nsdelegate, memory_recursiveprot that systemd mounts it with: the cause; " +
        'memory.min/memory.low protection and cgroup delegation now work differently on the whole node. Once no such lxcfs runs, restore them on ' +
        'the node (as root, outside containers): mount -o remount,nsdelegate,memory_recursiveprot /sys/fs/cgroup',
    );
    assert.match(
      cgroup2OptionsProblem(facts(RESET)) ?? '',
      /: an lxcfs older than 6\.0\.6 started in the node's cgroup namespace clears them \(lxc\/lxcfs#681\); /,
    );
  });

  it('reads this host: its cgroup2 mount and whether PID 1 is systemd', () => {
    const here = readCgroup2Options('/proc');
    assert.ok(here, 'this host has a cgroup2 mount (unified or hybrid)');
    assert.ok(here.options.includes('rw') || here.options.includes('ro'));
    assert.equal(here.initIsSystemd, readFileSync('/proc/1/comm', 'utf8').trim() === 'systemd');
  });
});
