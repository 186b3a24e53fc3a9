// The Helm model against the facts of Helm's source (pkg/action, pkg/kube), each on a throwaway chart
// made for it, so that the chart tests built on the model stand on checked behaviour.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ApiError, Cluster, type K8sObject } from './cluster.js';
import { Helm, type HelmVersion, type JobRunner } from './helm.js';

const work = mkdtempSync(join(tmpdir(), 'helm-model-'));
after(() => rmSync(work, { recursive: true, force: true }));
let charts = 0;

/** A chart with these templates (and values.yaml). */
function chart(templates: Record<string, string>, values = ''): string {
  const dir = join(work, `c${charts++}`);
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 1.0.0\n');
  writeFileSync(join(dir, 'values.yaml'), values);
  for (const [name, text] of Object.entries(templates))
    writeFileSync(join(dir, 'templates', name), text);
  return dir;
}

const cm = (name: string, extra = '') =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: {{ .Release.Namespace }}\n${extra}`;
const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

/** Hook Jobs succeed unless labelled outcome: fail; records the order they ran in. */
function recordingRunner(): JobRunner & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    run: async (o: K8sObject) => {
      ran.push(o.metadata.name);
      const ok = o.metadata.labels?.outcome !== 'fail';
      return {
        succeeded: ok,
        reason: ok ? '' : 'BackoffLimitExceeded',
        logs: ok ? '' : 'it failed',
      };
    },
  };
}

const hookJob = (
  name: string,
  event: string,
  extra: Record<string, string> = {},
  outcome = 'succeed',
) =>
  [
    'apiVersion: batch/v1',
    'kind: Job',
    'metadata:',
    `  name: ${name}`,
    `  labels: {outcome: ${outcome}}`,
    '  annotations:',
    `    helm.sh/hook: ${event}`,
    ...Object.entries(extra).map(([k, v]) => `    ${k}: "${v}"`),
    'spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}}',
    '---',
    '',
  ].join('\n');

for (const version of [3, 4] as HelmVersion[]) {
  describe(`Helm ${version} model: install`, () => {
    it('writes the release record into the release namespace before any chart object: a chart rendering that namespace fails', async () => {
      const c = chart({
        'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Release.Namespace }}\n',
        'cm.yaml': cm('a'),
      });
      const cluster = new Cluster();
      await assert.rejects(
        new Helm(cluster, version).install('r', c, { namespace: 'app' }),
        /INSTALLATION FAILED: create: failed to create: namespaces "app" not found/,
      );
      assert.deepEqual(cluster.list(), [], 'nothing was created');
    });
    it('--create-namespace with a chart rendering the same namespace: Helm 3 fails on "already exists", Helm 4 applies', async () => {
      const c = chart({
        'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Release.Namespace }}\n',
      });
      const cluster = new Cluster();
      const install = new Helm(cluster, version).install('r', c, {
        namespace: 'app',
        createNamespace: true,
      });
      if (version === 3)
        await assert.rejects(install, /INSTALLATION FAILED: namespaces "app" already exists/);
      else await install;
    });
    it("an existing object without Helm's ownership metadata stops the install; --take-ownership adopts it", async () => {
      const c = chart({ 'cm.yaml': cm('a', 'data: {k: chart}\n') });
      const cluster = new Cluster();
      cluster.create(ns('app'));
      cluster.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'a', namespace: 'app' },
        data: { k: 'user' },
      });
      await assert.rejects(
        new Helm(cluster, version).install('r', c, { namespace: 'app' }),
        /Unable to continue with install: ConfigMap "a" in namespace "app" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key "app.kubernetes.io\/managed-by": must be set to "Helm"; annotation validation error: missing key "meta.helm.sh\/release-name": must be set to "r"/,
      );
      assert.equal(cluster.get({ kind: 'ConfigMap', namespace: 'app', name: 'a' }).data.k, 'user');
      await new Helm(cluster, version).install('r', c, { namespace: 'app', takeOwnership: true });
      const adopted = cluster.get({ kind: 'ConfigMap', namespace: 'app', name: 'a' });
      assert.equal(adopted.data.k, 'chart');
      assert.equal(adopted.metadata.annotations?.['meta.helm.sh/release-name'], 'r');
    });
    it('the release name must be free', async () => {
      const c = chart({ 'cm.yaml': cm('a') });
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const helm = new Helm(cluster, version);
      await helm.install('r', c, { namespace: 'app' });
      await assert.rejects(
        helm.install('r', c, { namespace: 'app' }),
        /cannot re-use a name that is still in use/,
      );
    });
    it('a client dry-run changes nothing and reads nothing', async () => {
      const c = chart({
        'cm.yaml': cm('a', 'data:\n  found: "{{ len (lookup "v1" "Namespace" "" "app") }}"\n'),
      });
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const rel = await new Helm(cluster, version).install('r', c, {
        namespace: 'app',
        dryRun: 'client',
      });
      assert.equal(rel.manifest[0]!.data.found, '0', 'lookup finds nothing in a client dry-run');
      assert.equal(cluster.list('ConfigMap').length, 0);
    });
  });

  describe(`Helm ${version} model: hooks`, () => {
    it('run by weight then name, Jobs waited for; hook-succeeded deletions after the whole event; hooks carry no ownership metadata', async () => {
      const c = chart({
        'hooks.yaml': [
          hookJob('b', 'pre-install', {
            'helm.sh/hook-weight': '1',
            'helm.sh/hook-delete-policy': 'hook-succeeded',
          }),
          hookJob('a', 'pre-install', { 'helm.sh/hook-weight': '1' }),
          hookJob('z', 'pre-install', {
            'helm.sh/hook-weight': '-5',
            'helm.sh/hook-delete-policy': 'hook-succeeded',
          }),
        ].join(''),
        'cm.yaml': cm('x'),
      });
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const runner = recordingRunner();
      await new Helm(cluster, version, runner).install('r', c, { namespace: 'app' });
      assert.deepEqual(runner.ran, ['z', 'a', 'b']);
      assert.deepEqual(
        cluster.list('Job').map((j) => j.metadata.name),
        ['a'],
        'only the hook without hook-succeeded is left',
      );
      assert.equal(
        cluster.list('Job')[0]!.metadata.annotations?.['meta.helm.sh/release-name'],
        undefined,
      );
      const events = cluster.events;
      assert.ok(
        events.indexOf('delete Job app/z') > events.indexOf('create Job app/b'),
        "deleted after the event's last hook, not after its own",
      );
      assert.ok(
        events.indexOf('delete Job app/z') < events.indexOf('create ConfigMap app/x'),
        'pre-install hooks are done before the objects',
      );
    });
    it('a failed pre-delete hook stops uninstall before anything is deleted', async () => {
      const c = chart({
        'hooks.yaml': hookJob(
          'check',
          'pre-delete',
          { 'helm.sh/hook-delete-policy': 'hook-failed' },
          'fail',
        ),
        'cm.yaml': cm('x'),
      });
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const helm = new Helm(cluster, version, recordingRunner());
      await helm.install('r', c, { namespace: 'app' });
      await assert.rejects(
        helm.uninstall('r', { namespace: 'app' }),
        /job check failed: BackoffLimitExceeded/,
      );
      assert.equal(cluster.list('ConfigMap').length, 1);
      assert.equal(cluster.list('Job').length, 0, 'hook-failed deleted it');
      assert.equal(helm.status('r', 'app')?.status, 'deployed', 'the record is untouched');
      await helm.uninstall('r', { namespace: 'app', noHooks: true });
      assert.equal(cluster.list('ConfigMap').length, 0);
    });
  });

  describe(`Helm ${version} model: upgrade and uninstall`, () => {
    it('an upgrade deletes what it no longer renders, unless the live object says keep; fields no manifest set stay', async () => {
      const c = chart(
        {
          'cms.yaml': `{{- range .Values.names }}\n---\n${cm('{{ . }}', 'data: {k: v}\n').replace('.Release', '$.Release')}{{- end }}\n`,
        },
        'names: [a, b, c]\n',
      );
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const helm = new Helm(cluster, version);
      await helm.install('r', c, { namespace: 'app' });
      const b = cluster.get({ kind: 'ConfigMap', namespace: 'app', name: 'b' });
      b.metadata.annotations = { ...b.metadata.annotations, 'helm.sh/resource-policy': 'keep' };
      cluster.update(b);
      const a = cluster.get({ kind: 'ConfigMap', namespace: 'app', name: 'a' });
      a.data.patched = 'by someone';
      cluster.update(a);
      await helm.upgrade('r', c, { namespace: 'app', set: ['names={a}'] });
      assert.deepEqual(
        cluster
          .list('ConfigMap')
          .map((o) => o.metadata.name)
          .sort(),
        ['a', 'b'],
      );
      assert.equal(
        cluster.get({ kind: 'ConfigMap', namespace: 'app', name: 'a' }).data.patched,
        'by someone',
      );
      assert.deepEqual(
        helm.history('r', 'app').map((r) => r.status),
        ['superseded', 'deployed'],
      );
    });
    it('--reuse-values keeps the old values and defaults; --reset-then-reuse-values the new defaults; neither given: the old values when no new ones are', async () => {
      const c = chart(
        { 'cm.yaml': cm('a', 'data: {x: "{{ .Values.x }}", w: "{{ .Values.w }}"}\n') },
        'x: default\nw: default\n',
      );
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const helm = new Helm(cluster, version);
      const data = () => cluster.get({ kind: 'ConfigMap', namespace: 'app', name: 'a' }).data;
      await helm.install('r', c, { namespace: 'app', set: ['x=mine'] });
      await helm.upgrade('r', c, { namespace: 'app' });
      assert.deepEqual(data(), { x: 'mine', w: 'default' }, "no values given: the last release's");
      await helm.upgrade('r', c, { namespace: 'app', set: ['w=new'] });
      assert.deepEqual(data(), { x: 'default', w: 'new' }, 'new values alone reset the others');
      await helm.upgrade('r', c, {
        namespace: 'app',
        set: ['x=again'],
        resetThenReuseValues: true,
      });
      assert.deepEqual(data(), { x: 'again', w: 'new' });
      const newDefaults = chart(
        {
          'cm.yaml': cm(
            'a',
            'data: {x: "{{ .Values.x }}", w: "{{ .Values.w }}", z: "{{ .Values.z }}"}\n',
          ),
        },
        'x: default\nw: default\nz: added\n',
      );
      await helm.upgrade('r', newDefaults, { namespace: 'app', reuseValues: true });
      assert.deepEqual(
        data(),
        { x: 'again', w: 'new', z: '' },
        "--reuse-values renders with the old chart's values: a key the new chart added is missing",
      );
      await helm.upgrade('r', newDefaults, { namespace: 'app', resetThenReuseValues: true });
      assert.deepEqual(data(), { x: 'again', w: 'new', z: 'added' });
    });
    it('uninstall deletes every object of the release but those whose manifest says keep, and purges the history; hooks stay', async () => {
      const c = chart({
        'cms.yaml': `${cm('gone')}---\n${cm('kept', 'metadata:\n  annotations:\n    helm.sh/resource-policy: keep\n').replace(/\nmetadata:\n  annotations/, '\n  annotations')}`,
        'hook.yaml': hookJob('setup', 'post-install'),
      });
      const cluster = new Cluster();
      cluster.create(ns('app'));
      const helm = new Helm(cluster, version, recordingRunner());
      await helm.install('r', c, { namespace: 'app' });
      const { kept } = await helm.uninstall('r', { namespace: 'app' });
      assert.deepEqual(
        kept.map((k) => k.name),
        ['kept'],
      );
      assert.deepEqual(
        cluster.list('ConfigMap').map((o) => o.metadata.name),
        ['kept'],
      );
      assert.deepEqual(
        cluster.list('Job').map((o) => o.metadata.name),
        ['setup'],
        'a hook is not part of the release',
      );
      assert.deepEqual(helm.history('r', 'app'), []);
    });
  });
}

describe('cluster model', () => {
  it('deleting a namespace takes everything in it, at the end of the operation', () => {
    const cluster = new Cluster();
    cluster.create(ns('app'));
    cluster.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'app' } });
    cluster.delete({ kind: 'Namespace', name: 'app' });
    assert.throws(
      () =>
        cluster.create({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 't', namespace: 'app' },
        }),
      /because it is being terminated/,
    );
    assert.equal(cluster.list('Secret').length, 1, 'still there while terminating');
    cluster.settle();
    assert.deepEqual(cluster.list(), []);
  });
  it('RBAC: resourceNames restrict get and patch to a name; a create cannot be restricted by name', () => {
    const cluster = new Cluster();
    cluster.create(ns('app'));
    cluster.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'r', namespace: 'app' },
      rules: [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['mine'],
          verbs: ['get', 'create'],
        },
      ],
    });
    cluster.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'r', namespace: 'app' },
      roleRef: { kind: 'Role', name: 'r' },
      subjects: [{ kind: 'ServiceAccount', name: 'sa', namespace: 'app' }],
    });
    const sa = { namespace: 'app', name: 'sa' };
    const can = (verb: string, name: string, namespace = 'app') =>
      cluster.authorize(sa, { verb, group: '', resource: 'secrets', namespace, name });
    assert.equal(can('get', 'mine'), true);
    assert.equal(can('get', 'other'), false);
    assert.equal(can('patch', 'mine'), false);
    assert.equal(can('create', ''), false, 'a rule with resourceNames never allows a create');
    assert.equal(can('get', 'mine', 'elsewhere'), false);
  });
  it("API errors carry the API server's wording", () => {
    const cluster = new Cluster();
    assert.throws(
      () =>
        cluster.create({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 's', namespace: 'nope' },
        }),
      (err: ApiError) => err.code === 404 && err.message === 'namespaces "nope" not found',
    );
    cluster.create(ns('app'));
    assert.throws(() => cluster.create(ns('app')), /namespaces "app" already exists/);
  });
});
