// Where each kind keeps its pod, and what is refused or passed over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LxcfsWebhookError } from '../../src/errors.js';
import { describeObject, findPods } from '../../src/manifest/workloads.js';

const template = {
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] },
};

function object(
  apiVersion: string,
  kind: string,
  body: Record<string, unknown>,
): Record<string, unknown> {
  return { apiVersion, kind, metadata: { name: 'web', namespace: 'shop' }, ...body };
}

function assertManifestError(fn: () => unknown, message: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) =>
      err instanceof LxcfsWebhookError && err.code === 'E_MANIFEST' && message.test(err.message),
  );
}

describe('findPods', () => {
  const workloads: Array<[string, string, Record<string, unknown>, string[]]> = [
    ['v1', 'PodTemplate', { template }, ['template']],
    ['v1', 'ReplicationController', { spec: { template } }, ['spec', 'template']],
    ['apps/v1', 'Deployment', { spec: { template } }, ['spec', 'template']],
    ['apps/v1', 'StatefulSet', { spec: { template } }, ['spec', 'template']],
    ['apps/v1', 'DaemonSet', { spec: { template } }, ['spec', 'template']],
    ['apps/v1', 'ReplicaSet', { spec: { template } }, ['spec', 'template']],
    ['batch/v1', 'Job', { spec: { template } }, ['spec', 'template']],
    [
      'batch/v1',
      'CronJob',
      { spec: { jobTemplate: { spec: { template } } } },
      ['spec', 'jobTemplate', 'spec', 'template'],
    ],
  ];
  for (const [apiVersion, kind, body, path] of workloads) {
    it(`finds the pod template of a ${apiVersion} ${kind} at ${path.join('.')}`, () => {
      const [found, ...rest] = findPods(object(apiVersion, kind, body));
      assert.equal(rest.length, 0);
      assert.ok(found?.found === 'pod');
      assert.deepEqual(found.path, path);
      assert.equal(found.pod, template);
      assert.deepEqual(found.ref, {
        kind,
        group: apiVersion.includes('/') ? apiVersion.split('/')[0] : '',
        name: 'web',
        namespace: 'shop',
      });
    });
  }

  it('takes a Pod as its own pod', () => {
    const pod = object('v1', 'Pod', { spec: template.spec });
    const [found] = findPods(pod);
    assert.ok(found?.found === 'pod');
    assert.deepEqual(found.path, []);
    assert.equal(found.pod, pod);
  });

  it('walks the items of a List, with paths from the document root', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        object('v1', 'ConfigMap', { data: {} }),
        object('apps/v1', 'Deployment', { spec: { template } }),
      ],
    };
    const found = findPods(list);
    assert.deepEqual(
      found.map((f) => f.found),
      ['not-a-workload', 'pod'],
    );
    assert.ok(found[1]?.found === 'pod');
    assert.deepEqual(found[1].path, ['items', '1', 'spec', 'template']);
  });

  it('passes over other kinds, including known kind names of other API groups', () => {
    for (const [apiVersion, kind] of [
      ['v1', 'ConfigMap'],
      ['batch.volcano.sh/v1alpha1', 'Job'],
      ['argoproj.io/v1alpha1', 'Rollout'],
    ] as const) {
      const found = findPods(object(apiVersion, kind, { spec: { template } }));
      assert.deepEqual(
        found.map((f) => f.found),
        ['not-a-workload'],
        `${apiVersion} ${kind}`,
      );
    }
  });

  it('reports a workload without a pod template, such as a kustomize patch', () => {
    const [found] = findPods(object('apps/v1', 'Deployment', { spec: { replicas: 5 } }));
    assert.ok(found?.found === 'no-pod');
    assert.deepEqual(found.path, ['spec', 'template']);
  });

  it('refuses objects without apiVersion or kind, naming where they are', () => {
    assertManifestError(
      () => findPods({ metadata: { name: 'x' } }),
      /^has no apiVersion or kind; .*apiVersion: apps\/v1/,
    );
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [object('v1', 'ConfigMap', {}), { kind: 'Pod' }],
    };
    assertManifestError(() => findPods(list), /^items\[1\] has no apiVersion or kind/);
    assertManifestError(
      () => findPods({ ...list, items: ['text'] }),
      /^items\[0\] is a string, not a Kubernetes object/,
    );
  });

  it('refuses label and annotation values that are not strings, as the API server does', () => {
    const annotated = {
      ...template,
      metadata: { annotations: { 'lxcfs-webhook.io/inject': false } },
    };
    assertManifestError(
      () => findPods(object('apps/v1', 'Deployment', { spec: { template: annotated } })),
      /^spec\.template\.metadata\.annotations\["lxcfs-webhook\.io\/inject"\] is a boolean, but annotations must be strings: put the value in quotes$/,
    );
    const labelled = { ...template, metadata: { labels: ['app'] } };
    assertManifestError(
      () => findPods(object('v1', 'Pod', labelled)),
      /^metadata\.labels is a list; it must be a mapping of strings$/,
    );
  });
});

describe('describeObject', () => {
  it('names objects as kubectl does, with the namespace when the manifest sets one', () => {
    assert.equal(
      describeObject({ kind: 'Deployment', group: 'apps', name: 'web', namespace: 'shop' }),
      'deployment.apps/web (ns shop)',
    );
    assert.equal(describeObject({ kind: 'Pod', group: '' }), 'pod/(no name)');
  });
});
