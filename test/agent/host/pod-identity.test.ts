import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePodIdentity } from '../../../src/agent/host/pod-identity.js';

const CID = '3f2a9c0d4e5b6a7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7';
const UID = '0b6c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d';

test('cgroupfs driver (cgroup v1): pod uid and container id from the memory line', () => {
  const file = [
    '12:pids:/kubepods/burstable/pod' + UID + '/' + CID,
    '4:memory:/kubepods/burstable/pod' + UID + '/' + CID,
    '1:name=systemd:/kubepods/burstable/pod' + UID + '/' + CID,
    '0::/',
  ].join('\n');
  assert.deepEqual(parsePodIdentity(file), {
    podUid: UID,
    containerId: CID,
    cgroup: `/kubepods/burstable/pod${UID}/${CID}`,
  });
});

test('guaranteed pods have no QoS level in the path', () => {
  assert.deepEqual(parsePodIdentity(`4:memory:/kubepods/pod${UID}/${CID}\n`).containerId, CID);
});

test('systemd driver (cgroup v2): underscores in the pod uid, runtime prefix and .scope on the container', () => {
  const underscored = UID.replaceAll('-', '_');
  for (const runtime of ['cri-containerd', 'crio', 'docker']) {
    const path = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${underscored}.slice/${runtime}-${CID}.scope`;
    assert.deepEqual(parsePodIdentity(`0::${path}\n`), {
      podUid: UID,
      containerId: CID,
      cgroup: path,
    });
  }
});

test('a pod-level cgroup names the pod but no container', () => {
  assert.deepEqual(
    parsePodIdentity(`0::/kubepods.slice/kubepods-pod${UID.replaceAll('-', '_')}.slice\n`).podUid,
    UID,
  );
  assert.equal(
    parsePodIdentity(`0::/kubepods.slice/kubepods-pod${UID.replaceAll('-', '_')}.slice\n`)
      .containerId,
    undefined,
  );
});

test('anything else keeps its raw cgroup path: memory (v1) first, then the v2 line', () => {
  assert.deepEqual(
    parsePodIdentity('9:name=systemd:/system.slice/foo.service\n4:memory:/lxc/c1\n0::/\n'),
    { cgroup: '/lxc/c1' },
  );
  assert.deepEqual(parsePodIdentity('0::/system.slice/containerd.service\n'), {
    cgroup: '/system.slice/containerd.service',
  });
});

test('a cgroup path containing colons is kept whole', () => {
  assert.deepEqual(parsePodIdentity('4:memory:/a:b/c\n'), { cgroup: '/a:b/c' });
});
