// Mount paths as the kubelet mounts them: the fast path for clean paths must agree with full
// normalisation on every shape of path, clean or not.
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { test } from 'node:test';
import { normalisedMountPath } from '../../src/inject/volumes.js';

/** What the kubelet does (volumeutil.MakeAbsolutePath, then a clean), without any shortcut. */
const kubelet = (path: string) => posix.normalize(`/${path}`).replace(/(.)\/+$/, '$1');

test('normalisedMountPath agrees with full normalisation on clean and unclean paths', () => {
  const paths = [
    '/proc/meminfo',
    '/sys/devices/system/cpu/online',
    '/proc/meminfo/',
    '/proc//meminfo',
    'proc/meminfo',
    '/proc/./meminfo',
    '/proc/../proc/meminfo',
    '/proc/meminfo/.',
    '/proc/meminfo/..',
    '/.',
    '/..',
    '/',
    '//',
    '',
    '/...',
    '/a/...',
    '/.hidden/x',
    '/x/.hidden',
    '/a/..b',
    '/a/b..',
    '/a b/c',
    '/proc/meminfo//',
  ];
  for (const path of paths)
    assert.equal(normalisedMountPath(path), kubelet(path), `mountPath ${JSON.stringify(path)}`);
});

test('normalisedMountPath maps the forms the API server accepts onto the file they land on', () => {
  assert.equal(normalisedMountPath('/proc/meminfo/'), '/proc/meminfo');
  assert.equal(normalisedMountPath('proc/meminfo'), '/proc/meminfo');
  assert.equal(normalisedMountPath('/proc/./meminfo'), '/proc/meminfo');
  assert.equal(normalisedMountPath(42), undefined);
});
