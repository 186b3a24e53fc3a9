// Test helpers shared by every suite that mutates pods: apply a patch the way the API server does
// (strict RFC 6902, here by an independent implementation) and check the result the way the API server
// would: against the Kubernetes Pod schema, plus the cross-field rules our change could break.
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import jsonPatch from 'fast-json-patch';
import { Pod as PodModel } from 'kubernetes-models/v1/Pod';
import type { Pod, Volume, Container, VolumeMount } from '../../src/inject/pod.js';

/** Applies `patch` to a copy of `pod`, failing on any operation a strict implementation refuses. */
export function applyStrict<T>(pod: T, patch: unknown[]): T {
  return jsonPatch.applyPatch(structuredClone(pod), patch as jsonPatch.Operation[], true, false)
    .newDocument;
}

/**
 * The API server's limit on annotations: keys plus values, in bytes, at most 256 KiB
 * (ValidateAnnotationsSize in k8s.io/apimachinery/pkg/api/validation/objectmeta.go).
 */
export function annotationsSize(pod: Pod): number {
  return Object.entries(pod.metadata?.annotations ?? {}).reduce(
    (sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(String(v)),
    0,
  );
}

/** Schema validation plus the apiserver's annotation size, uniqueness and reference checks on volumes and mounts. */
export function assertValidPod(pod: Pod): void {
  new PodModel(pod as never).validate();
  assert.ok(
    annotationsSize(pod) <= 256 * 1024,
    `annotations take ${annotationsSize(pod)} bytes, over the API server's 262144`,
  );
  const spec = pod.spec ?? {};
  const volumes = (spec.volumes ?? []) as Volume[];
  const volumeNames = volumes.map((v) => v.name);
  assert.equal(
    new Set(volumeNames).size,
    volumeNames.length,
    `duplicate volume names: ${volumeNames.join(', ')}`,
  );
  const all: Container[] = [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
  const containerNames = all.map((c) => c.name);
  assert.equal(new Set(containerNames).size, containerNames.length, 'duplicate container names');
  for (const container of all) {
    const mounts = (container.volumeMounts ?? []) as VolumeMount[];
    // Where the kubelet mounts them: a relative mountPath is made absolute (`proc/meminfo` is /proc/meminfo).
    const paths = mounts.map((m) => posix.normalize(`/${m.mountPath}`).replace(/(.)\/+$/, '$1'));
    assert.equal(
      new Set(paths).size,
      paths.length,
      `container ${container.name}: two mounts on one target in ${mounts.map((m) => m.mountPath).join(', ')}`,
    );
    for (const mount of mounts) {
      assert.ok(
        volumeNames.includes(mount.name),
        `container ${container.name}: mount ${mount.name} has no volume`,
      );
    }
  }
}
