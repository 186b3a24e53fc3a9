import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isReadOnly,
  mountsAtOrBelow,
  parseMountinfo,
  topMountAt,
  visibleMountAt,
} from '../../../src/agent/host/mountinfo.js';

// Lines as a container's mountinfo shows them: a stale bind (0:41) under a live one (0:43), a read-only
// bind, and a path with an escaped space.
const SAMPLE = [
  '80 45 0:60 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '81 80 0:41 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0,group_id=0,allow_other',
  '90 81 0:43 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime shared:5 master:2 - fuse.lxcfs lxcfs rw,user_id=0,group_id=0,allow_other',
  '82 80 0:43 /proc/cpuinfo /proc/cpuinfo ro,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0,group_id=0,allow_other',
  '83 45 0:22 / /mnt/with\\040space rw - tmpfs my\\040src rw',
  '',
].join('\n');

test('parses every field, optional fields and octal escapes included', () => {
  const mounts = parseMountinfo(SAMPLE);
  assert.equal(mounts.length, 5);
  assert.deepEqual(mounts[2], {
    mountId: 90,
    parentId: 81,
    dev: '0:43',
    root: '/proc/meminfo',
    rootDeleted: false,
    mountPoint: '/proc/meminfo',
    options: ['rw', 'nosuid', 'nodev', 'relatime'],
    fsType: 'fuse.lxcfs',
    source: 'lxcfs',
  });
  assert.equal(mounts[4]!.mountPoint, '/mnt/with space');
  assert.equal(mounts[4]!.source, 'my src');
});

test('a root the kernel marks deleted (a dentry a failed FUSE lookup dropped) keeps its file path', () => {
  const [mount] = parseMountinfo(
    '108 69 0:43 /proc/meminfo//deleted /proc/meminfo rw,relatime - fuse.lxcfs lxcfs rw\n',
  );
  assert.deepEqual(
    [mount?.root, mount?.rootDeleted, mount?.mountPoint],
    ['/proc/meminfo', true, '/proc/meminfo'],
  );
});

test('rejects a line it cannot read instead of guessing', () => {
  assert.throws(() => parseMountinfo('1 2 0:3 / /x rw\n'), /unparseable mountinfo line/);
});

test('the top of a stack is the mount nothing else at that place sits on', () => {
  const mounts = parseMountinfo(SAMPLE);
  assert.equal(topMountAt(mounts, '/proc/meminfo')?.mountId, 90);
  // the order of lines does not decide it
  assert.equal(topMountAt([...mounts].reverse(), '/proc/meminfo')?.mountId, 90);
  assert.equal(topMountAt(mounts, '/proc/stat'), undefined);
});

test('lists mounts at or below a path, deepest first, and not siblings with the same prefix', () => {
  const mounts = parseMountinfo(SAMPLE);
  assert.deepEqual(
    mountsAtOrBelow(mounts, '/proc').map((m) => m.mountId),
    [81, 90, 82, 80],
  );
  assert.deepEqual(mountsAtOrBelow(mounts, '/proc/mem'), []);
});

test('read-only is the per-mount option, not the superblock option', () => {
  const mounts = parseMountinfo(SAMPLE);
  assert.equal(isReadOnly(mounts[3]!), true);
  assert.equal(isReadOnly(mounts[2]!), false);
});

test('the visible mount at a path is found from the root down: a bind hidden under a later /proc is not it', () => {
  const mounts = parseMountinfo(
    [
      '20 1 254:1 / / rw - ext4 /dev/vda1 rw',
      '21 20 0:5 / /proc rw - proc proc rw',
      '22 21 0:43 /proc/meminfo /proc/meminfo rw - fuse.lxcfs lxcfs rw',
      '23 21 0:6 / /proc rw - proc proc rw',
      '24 20 0:7 / /sys rw - sysfs sysfs rw',
      '25 24 0:43 /sys/devices/system/cpu/online /sys/devices/system/cpu/online rw - fuse.lxcfs lxcfs rw',
    ].join('\n'),
  );
  assert.equal(
    visibleMountAt(mounts, '/proc/meminfo')?.mountId,
    23,
    'the fresh /proc on top hides the bind',
  );
  assert.equal(visibleMountAt(mounts, '/sys/devices/system/cpu/online')?.mountId, 25);
  assert.equal(visibleMountAt(mounts, '/etc/hostname')?.mountId, 20);
  assert.equal(visibleMountAt([], '/proc'), undefined);
});
