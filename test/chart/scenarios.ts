// What users do with the chart, as scenarios run on the Helm model (test/helm) with hook Jobs executed
// for real: install as the README says, uninstall without losing anything, upgrade across certificate
// modes, renders that never change, a Secret the chart did not make, renewal. Each throws (an assertion
// or Helm's error) when the chart gets it wrong. lifecycle.test.ts runs them on the chart under Helm 3
// and 4; chart-0.1.0.test.ts shows each one failing on chart 0.1.0.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import { CERTS_SECRET_LABEL } from '../../src/config/defaults.js';
import { Cluster, type K8sObject } from '../helm/cluster.js';
import { apiServerTrustsWebhook, certManager, serviceCaOperator } from '../helm/controllers.js';
import { Helm, type HelmVersion } from '../helm/helm.js';
import { LocalPodRunner } from '../helm/pods.js';

export const RELEASE = 'lxcfs-webhook';
export const NS = 'lxcfs';
const PRIVILEGED = {
  'pod-security.kubernetes.io/enforce': 'privileged',
  'pod-security.kubernetes.io/warn': 'privileged',
};

export interface World {
  cluster: Cluster;
  helm: Helm;
  runner: LocalPodRunner;
  chart: string;
}

export function world(version: HelmVersion, chart: string): World {
  const cluster = new Cluster();
  const runner = new LocalPodRunner();
  return { cluster, helm: new Helm(cluster, version, runner), runner, chart };
}

/** `kubectl create namespace lxcfs` and the README's label command. */
export function userNamespace(w: World, labels: Record<string, string> = PRIVILEGED): void {
  w.cluster.create({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS, labels: { 'kubernetes.io/metadata.name': NS, ...labels } },
  });
}

/** The controllers that act on the chart's objects, after each helm command. */
async function reconcile(w: World): Promise<void> {
  await certManager(w.cluster);
  await serviceCaOperator(w.cluster);
}

export function assertTrusted(w: World): void {
  const trust = apiServerTrustsWebhook(w.cluster, NS);
  assert.ok(trust.ok, trust.detail);
}

const install = async (w: World, set: string[] = [], extra: { createNamespace?: boolean } = {}) => {
  await w.helm.install(RELEASE, w.chart, { namespace: NS, set, ...extra });
  await reconcile(w);
};
const upgrade = async (w: World, set: string[], extra: { resetThenReuseValues?: boolean } = {}) => {
  await w.helm.upgrade(RELEASE, w.chart, { namespace: NS, set, ...extra });
  await reconcile(w);
};

/** Everything left in the cluster that a hook made and did not delete (Jobs, their RBAC). */
function hookLeftovers(cluster: Cluster): string[] {
  return cluster
    .list()
    .filter(
      (o) =>
        o.kind === 'Job' ||
        /-hook$/.test(o.metadata.name) ||
        o.metadata.name === 'lxcfs-webhook-clean-nodes-first',
    )
    .map((o) => `${o.kind}/${o.metadata.name}`);
}

/** The README's install: namespace made and labelled, then helm install; every object Helm's, the webhook trusted. */
export async function installAsReadme(w: World): Promise<void> {
  userNamespace(w);
  await install(w);
  assert.equal(w.helm.status(RELEASE, NS)?.status, 'deployed');
  for (const o of w.helm.status(RELEASE, NS)!.manifest) {
    const live = w.cluster.get({
      kind: o.kind,
      name: o.metadata.name,
      ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
    });
    assert.equal(
      live.metadata.annotations?.['meta.helm.sh/release-name'],
      RELEASE,
      `${o.kind}/${o.metadata.name}`,
    );
  }
  assertTrusted(w);
  await w.helm.test(RELEASE, { namespace: NS });
  assert.deepEqual(hookLeftovers(w.cluster), []);
}

/** `helm install --create-namespace`, the other way to get the namespace. */
export async function installCreatingNamespace(w: World): Promise<void> {
  await install(w, [], { createNamespace: true });
  assert.equal(w.helm.status(RELEASE, NS)?.status, 'deployed');
}

/**
 * Uninstall as the README says, with the user's own Secret in the namespace: a plain `helm uninstall`
 * is stopped before deleting anything; the clean-up upgrade replaces the agent and removes the webhook
 * configuration; `helm uninstall` then removes every release object and leaves the namespace, the
 * user's Secret, and nothing of Helm's or of its hooks.
 */
export async function uninstallKeepsWhatUsersMade(w: World): Promise<void> {
  await installAsReadme(w);
  w.cluster.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'my-app-settings', namespace: NS },
    data: { k: 'dg==' },
  });
  const before = w.cluster.list().length;
  await assert.rejects(
    w.helm.uninstall(RELEASE, { namespace: NS }),
    /job lxcfs-webhook-clean-nodes-first failed/,
  );
  assert.equal(w.cluster.list().length, before, 'the stopped uninstall deleted nothing');
  assert.match(
    w.helm.output.join('\n'),
    /--set uninstall\.cleanNodes=true/,
    'Helm >= 3.18 prints the step (hook-output-log-policy)',
  );

  await upgrade(w, ['uninstall.cleanNodes=true'], { resetThenReuseValues: true });
  assert.equal(
    w.cluster.tryGet({ kind: 'MutatingWebhookConfiguration', name: 'lxcfs-webhook' }),
    undefined,
    'no new pod gets lxcfs mounts',
  );
  assert.equal(
    w.cluster.tryGet({ kind: 'DaemonSet', namespace: NS, name: 'lxcfs-agent' }),
    undefined,
  );
  assert.ok(
    w.cluster.tryGet({ kind: 'DaemonSet', namespace: NS, name: 'lxcfs-cleanup' }),
    'the clean-up runs on every node',
  );

  const manifest = w.helm.status(RELEASE, NS)!.manifest;
  await w.helm.uninstall(RELEASE, { namespace: NS });
  for (const o of manifest) {
    assert.equal(
      w.cluster.tryGet({
        kind: o.kind,
        name: o.metadata.name,
        ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
      }),
      undefined,
      `${o.kind}/${o.metadata.name} deleted`,
    );
  }
  assert.ok(
    w.cluster.tryGet({ kind: 'Namespace', name: NS }),
    'the namespace the user made is kept',
  );
  assert.ok(
    w.cluster.tryGet({ kind: 'Secret', namespace: NS, name: 'my-app-settings' }),
    "the user's Secret is kept",
  );
  assert.deepEqual(
    w.helm.history(RELEASE, NS),
    [],
    'the release history is purged, not lost with the namespace',
  );
  assert.deepEqual(hookLeftovers(w.cluster), []);
  assert.equal(
    w.cluster.list('MutatingWebhookConfiguration').length +
      w.cluster.list('ClusterRole').length +
      w.cluster.list('ClusterRoleBinding').length,
    0,
    'nothing cluster-wide is left',
  );
}

/** `helm uninstall --no-hooks` (the README's way to skip the node clean-up): everything of the release goes, the namespace stays. */
export async function uninstallWithoutCleaning(w: World): Promise<void> {
  await installAsReadme(w);
  await w.helm.uninstall(RELEASE, { namespace: NS, noHooks: true });
  assert.deepEqual(
    w.cluster
      .list()
      .filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'Helm')
      .map((o) => `${o.kind}/${o.metadata.name}`),
    [],
  );
  assert.ok(w.cluster.tryGet({ kind: 'Namespace', name: NS }));
  assert.deepEqual(hookLeftovers(w.cluster), [], 'the check never ran');
}

/**
 * `helm template` (GitOps) renders the same bytes every time, in every certificate mode; with --no-hooks
 * (a plain kubectl apply, where nothing runs hooks) no Job or Pod is left to run.
 */
export function templateIsStable(w: World): void {
  for (const set of [
    [],
    ['certificates.mode=self-signed'],
    ['certificates.mode=service-ca', 'openshift.enabled=true'],
  ]) {
    const render = () => JSON.stringify(w.helm.template(RELEASE, w.chart, { namespace: NS, set }));
    assert.equal(
      render(),
      render(),
      `helm template with ${set.join(' ') || 'defaults'} renders the same twice`,
    );
  }
  const plain = w.helm.template(RELEASE, w.chart, { namespace: NS, noHooks: true });
  assert.deepEqual(
    plain.filter((o) => o.kind === 'Job' || o.kind === 'Pod').map((o) => o.metadata.name),
    [],
  );
}

const secretOf = (w: World, name: string) => w.cluster.get({ kind: 'Secret', namespace: NS, name });
const tlsSecretName = (w: World) =>
  w.cluster
    .get({ kind: 'Deployment', namespace: NS, name: 'lxcfs-webhook' })
    .spec.template.spec.volumes.find((v: any) => v.name === 'tls').secret.secretName as string;
const caBundles = (w: World) =>
  w.cluster
    .get({ kind: 'MutatingWebhookConfiguration', name: 'lxcfs-webhook' })
    .webhooks.map((h: any) => h.clientConfig.caBundle);

/** Self-signed: made at install (by the Job), the same after an upgrade, trusted all along. */
export async function selfSignedStaysPut(w: World): Promise<void> {
  userNamespace(w);
  await install(w, ['certificates.mode=self-signed']);
  assertTrusted(w);
  const name = tlsSecretName(w);
  const first = secretOf(w, name).data;
  const bundles = caBundles(w);
  await upgrade(w, [], { resetThenReuseValues: true });
  await upgrade(w, ['webhook.replicas=3'], { resetThenReuseValues: true });
  assert.deepEqual(secretOf(w, name).data, first, 'the Secret is the same after upgrades');
  assert.deepEqual(caBundles(w), bundles, 'and so is every caBundle');
  assertTrusted(w);
  await w.helm.test(RELEASE, { namespace: NS });
  assert.deepEqual(hookLeftovers(w.cluster), []);
}

/** The TLS Secret self-signed mode uses, read from a render (the chart decides its name). */
function selfSignedSecretName(w: World): string {
  const objects = w.helm.template(RELEASE, w.chart, {
    namespace: NS,
    set: ['certificates.mode=self-signed'],
  });
  return objects
    .find((o) => o.kind === 'Deployment')!
    .spec.template.spec.volumes.find((v: any) => v.name === 'tls').secret.secretName;
}

/** A TLS Secret someone else made (cert-manager's, say), under the name self-signed mode uses. */
async function foreignSecret(name: string): Promise<K8sObject> {
  const ca = await createCA({ commonName: 'someone else', validDays: 30 });
  const cert = await issueServingCert(ca, ['lxcfs-webhook.lxcfs.svc'], { validDays: 30 });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace: NS, annotations: { 'cert-manager.io/certificate-name': 'other' } },
    data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem), 'ca.crt': b64(ca.certPem) },
  };
}

/** Self-signed never takes over a Secret it did not make: the install stops and the Secret is untouched. */
export async function neverAdoptsForeignSecret(w: World): Promise<void> {
  userNamespace(w);
  const foreign = await foreignSecret(selfSignedSecretName(w));
  w.cluster.create(foreign);
  await assert.rejects(install(w, ['certificates.mode=self-signed']), /INSTALLATION FAILED/);
  assert.deepEqual(
    secretOf(w, foreign.metadata.name).data,
    foreign.data,
    'the Secret is untouched',
  );
  assert.match(
    w.helm.output.join('\n'),
    /was not made by lxcfs-webhook certs/,
    "the Job's log says why",
  );
}

/** A serving certificate close to expiry is renewed (same CA, same caBundle) by an upgrade and by the CronJob. */
export async function renewsBeforeExpiry(w: World): Promise<void> {
  userNamespace(w);
  await install(w, ['certificates.mode=self-signed']);
  const name = tlsSecretName(w);
  const expiring = async () => {
    // Re-issue the serving certificate as if made 360 days ago for 365 days: 5 days left.
    const s = secretOf(w, name);
    const { loadCA } = await import('../../src/certs/authority.js');
    const ca = await loadCA(
      Buffer.from(s.data['ca.crt'], 'base64').toString(),
      Buffer.from(s.data['ca.key'], 'base64').toString(),
    );
    const old = await issueServingCert(
      ca,
      [
        'lxcfs-webhook',
        'lxcfs-webhook.lxcfs',
        'lxcfs-webhook.lxcfs.svc',
        'lxcfs-webhook.lxcfs.svc.cluster.local',
      ],
      { validDays: 365, now: new Date(Date.now() - 360 * 86_400_000) },
    );
    s.data['tls.crt'] = Buffer.from(old.certPem).toString('base64');
    s.data['tls.key'] = Buffer.from(old.keyPem).toString('base64');
    w.cluster.update(s);
    return s.data['tls.crt'] as string;
  };
  const daysLeft = () =>
    (Date.parse(
      new X509Certificate(Buffer.from(secretOf(w, name).data['tls.crt'], 'base64')).validTo,
    ) -
      Date.now()) /
    86_400_000;
  const ca = secretOf(w, name).data['ca.crt'];
  const bundles = caBundles(w);

  await expiring();
  assert.ok(daysLeft() < 6);
  await upgrade(w, [], { resetThenReuseValues: true });
  assert.ok(daysLeft() > 360, `renewed by the upgrade (${daysLeft().toFixed(0)} days left)`);

  await expiring();
  const cron = w.cluster.list('CronJob', NS).find((c) => c.metadata.name === 'lxcfs-webhook-certs');
  assert.ok(cron, 'a CronJob renews between upgrades');
  const job: K8sObject = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'lxcfs-webhook-certs-manual', namespace: NS },
    spec: cron.spec.jobTemplate.spec,
  };
  const ran = await w.runner.run(job, w.helm);
  assert.ok(ran.succeeded, ran.logs);
  assert.ok(
    daysLeft() > 360,
    `renewed by the CronJob's run (${daysLeft().toFixed(0)} days left): ${ran.logs}`,
  );
  assert.equal(secretOf(w, name).data['ca.crt'], ca, 'the same CA');
  assert.deepEqual(caBundles(w), bundles, 'so the caBundle did not change');
  assertTrusted(w);
  assert.equal(
    secretOf(w, name).metadata.labels?.[CERTS_SECRET_LABEL.key],
    CERTS_SECRET_LABEL.value,
  );
}

/** Upgrades across certificate modes: the webhook is trusted after each, nothing is lost on the way. */
export async function modeSwitches(w: World): Promise<void> {
  userNamespace(w);
  await install(w);
  assertTrusted(w);
  await upgrade(w, ['certificates.mode=self-signed']);
  assertTrusted(w);
  // mode secret: the user's own pair, made with certs --out's code for the Service.
  const ca = await createCA({ commonName: 'mine', validDays: 30 });
  const cert = await issueServingCert(ca, ['lxcfs-webhook.lxcfs.svc'], { validDays: 30 });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  w.cluster.create({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: 'my-webhook-tls', namespace: NS },
    data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem) },
  });
  await upgrade(w, [
    'certificates.mode=secret',
    'certificates.secretName=my-webhook-tls',
    `certificates.caBundle=${b64(ca.certPem)}`,
  ]);
  assertTrusted(w);
  // cert-manager leaves its Secrets behind; the README says to delete them before the service CA
  // operator can make lxcfs-webhook-tls (it never writes over a Secret it did not make).
  for (const name of ['lxcfs-webhook-tls', 'lxcfs-webhook-ca'])
    w.cluster.delete({ kind: 'Secret', namespace: NS, name });
  await upgrade(w, ['certificates.mode=service-ca', 'openshift.enabled=true']);
  assertTrusted(w);
  await upgrade(w, ['certificates.mode=self-signed']);
  assertTrusted(w);
  await upgrade(w, []);
  assertTrusted(w);
  assert.ok(
    w.cluster.tryGet({ kind: 'Secret', namespace: NS, name: 'my-webhook-tls' }),
    "the user's Secret is never deleted",
  );
  assert.equal(w.helm.status(RELEASE, NS)?.status, 'deployed');
  assert.deepEqual(hookLeftovers(w.cluster), []);
}

/** Values that cannot work are refused before anything changes. */
export async function refusesValuesThatCannotWork(w: World): Promise<void> {
  userNamespace(w);
  for (const set of [
    ['certificates.mode=null'],
    ['webhook.podDisruptionBudget=null'],
    ['webhook.image.tag=20240101'],
  ]) {
    await assert.rejects(
      install(w, set),
      /INSTALLATION FAILED: values don't meet the specifications of the schema/,
      set.join(' '),
    );
  }
  assert.deepEqual(
    w.cluster
      .list()
      .map((o) => o.kind)
      .sort(),
    ['Namespace', 'ServiceAccount'],
  );
}
