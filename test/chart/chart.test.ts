// The Helm chart rendered for real (test/chart/renderer): the default render against the kustomize
// cert-manager install, every value combination against the Kubernetes schemas, the schema's refusals
// (nulls and the traps of --set included), what mode self-signed and the uninstall step render, and helm
// lint's rules. What Helm then does with these objects (install, upgrade, uninstall, hooks) is
// test/chart/lifecycle.test.ts.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { cliPath, repoRoot } from '../helpers/paths.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { HOST, startTestWebhook } from '../helpers/webhook.js';
import { localhostCertificate } from '../../src/admission/self-signed.js';
import { parseKeyPair } from '../../src/admission/tls.js';
import { command as serveCommand } from '../../src/cli/serve.js';
import { checkNetworkPolicies } from '../deploy/network-policy.js';
import { readmeExample, readmeFile } from '../helpers/readme.js';
import { INSTALL } from '../../src/config/defaults.js';
import { checkInstall, mountedClientCa } from '../deploy/check-install.js';
import { find, kustomize, kustomizeWithComponent, type K8sObject } from '../deploy/render.js';
import {
  chartDir,
  releaseObjects,
  RenderError,
  renderChart,
  renderRaw,
  type RenderOptions,
} from './render.js';
import { mergeValues } from '../helm/strvals.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const overlay = (name: string) => posix.join(repoRoot, 'deploy', 'overlays', name);
const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Labels Helm's conventions add to every object's metadata; the kustomize install has none of them. */
const HELM_LABELS = [
  'helm.sh/chart',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
];

/** Removes the differences the chart is allowed to have from a kustomize install, each for its reason. */
function withoutAllowedDifferences(o: K8sObject): K8sObject {
  const copy = structuredClone(o);
  // Reason: Helm's standard labels (release tracking, `helm lint` convention); selectors never include them.
  for (const label of HELM_LABELS) delete copy.metadata.labels?.[label];
  // Reason: deploy/base's `labels:` reaches the base's objects only, so the overlays' own objects
  // (cert-manager's Issuers and Certificates, OpenShift's SCC and RBAC) have no part-of label; the chart
  // gives every object the same labels.
  delete copy.metadata.labels?.['app.kubernetes.io/part-of'];
  if (copy.metadata.labels && Object.keys(copy.metadata.labels).length === 0)
    delete copy.metadata.labels;
  // Reason: kustomize does not know SecurityContextConstraints is cluster-scoped and gives it the
  // kustomization's namespace (which the API server drops); the chart leaves it out.
  if (copy.kind === 'SecurityContextConstraints') delete copy.metadata.namespace;
  return copy;
}

/**
 * Where self-signed differs from the self-managed overlay, each for its reason: the overlay applies the
 * Secret and caBundle `certs --out` wrote; the chart's `certs` Job makes the Secret (another name, so a
 * Secret it did not make is never in its way) and writes the caBundle into the live object, so the chart
 * renders neither, and mounts only the serving pair (the Secret also holds the CA key). The CronJob that
 * renews, and its RBAC, are the chart's alone (selfSignedMachinery).
 */
function withoutCertificateMachinery(o: K8sObject): K8sObject {
  const copy = structuredClone(o);
  if (copy.kind === 'MutatingWebhookConfiguration')
    for (const hook of copy.webhooks) delete hook.clientConfig.caBundle;
  if (copy.kind === 'Deployment') {
    const tls = copy.spec.template.spec.volumes.find((v: any) => v.name === 'tls');
    tls.secret = { secretName: "the webhook's TLS Secret" };
  }
  return copy;
}

const selfSignedMachinery = (o: K8sObject) =>
  o.metadata.name === 'lxcfs-webhook-certs' ||
  (o.kind === 'Secret' && o.metadata.name === 'lxcfs-webhook-tls');

/**
 * Compares two installs object by object, field by field, naming the first object that differs. The
 * kustomize install's Namespace is left out: with Helm the user makes and labels it (the README's
 * commands, which test/chart/readme.test.ts checks against deploy/base/namespace.yaml's labels).
 */
function assertSameObjects(
  chart: K8sObject[],
  kustomized: K8sObject[],
  normalize = (o: K8sObject) => o,
): void {
  const byKey = (objects: K8sObject[]) =>
    new Map(
      objects
        .filter((o) => o.kind !== 'Namespace')
        .map(withoutAllowedDifferences)
        .map(normalize)
        .map((o) => [key(o), o]),
    );
  const a = byKey(chart);
  const b = byKey(kustomized);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), 'the same set of objects');
  for (const [k, object] of a)
    assert.deepEqual(object, b.get(k), `${k} is the same field by field`);
}

/** The Namespace the README's commands make (kubectl create namespace, label): deploy/base's. */
const userNamespace = () =>
  kustomize(overlay('cert-manager')).filter((o) => o.kind === 'Namespace');
const withUserNamespace = (objects: K8sObject[]) => [...userNamespace(), ...objects];

/** OpenShift's SCC has no schema package here; the OpenShift test compares it with the overlay's instead. */
const NO_SCHEMA_HERE = new Set(['SecurityContextConstraints']);

/** Every object against its schema. */
function validateAll(objects: K8sObject[]): void {
  for (const o of objects) if (!NO_SCHEMA_HERE.has(o.kind)) validateObject(o);
}

/** A CA certificate for webhook.clientCA (the localhost CA `serve` makes in memory). */
const CLIENT_CA = (await localhostCertificate()).caCertPem;

/** The value combinations rendered (and listed in the README); each must render valid objects. */
const COMBINATIONS: Record<string, RenderOptions> = {
  'defaults (cert-manager)': {},
  'self-signed, install': { values: [{ certificates: { mode: 'self-signed' } }] },
  'existing Secret and caBundle': {
    values: [{ certificates: { mode: 'secret', secretName: 'my-tls', caBundle: 'Q0EK' } }],
  },
  'OpenShift: service CA and SCC': {
    values: [{ certificates: { mode: 'service-ca' }, openshift: { enabled: true } }],
  },
  ServiceMonitors: {
    values: [{ serviceMonitor: { enabled: true, interval: '30s', labels: { release: 'prom' } } }],
  },
  'images by digest, private registry, pull secrets': {
    values: [
      {
        webhook: {
          image: {
            registry: 'registry.example.com',
            repository: 'lxcfs/webhook',
            digest: `sha256:${'a'.repeat(64)}`,
            pullPolicy: 'Always',
            pullSecrets: ['regcred'],
          },
        },
        agent: {
          image: {
            registry: 'registry.example.com',
            repository: 'lxcfs/agent',
            tag: '9.9.9',
            pullSecrets: ['regcred', 'other'],
          },
        },
      },
    ],
  },
  'webhook scheduling': {
    values: [
      {
        webhook: {
          replicas: 3,
          priorityClassName: '',
          podDisruptionBudget: { enabled: false },
          nodeSelector: { pool: 'system' },
          tolerations: [
            { key: 'dedicated', operator: 'Equal', value: 'system', effect: 'NoSchedule' },
          ],
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'pool', operator: 'In', values: ['system'] }] },
                ],
              },
            },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 2,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'DoNotSchedule',
            },
          ],
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
        },
      },
    ],
  },
  'agent settings': {
    values: [
      {
        agent: {
          lxcfsArgs: '--enable-cfs --enable-pidfd -l',
          sweepInterval: '30s',
          updateStrategy: { type: 'OnDelete', rollingUpdate: null },
          tolerations: [],
          nodeSelector: { 'kubernetes.io/os': 'linux', lxcfs: 'enabled' },
          priorityClassName: 'high',
          resources: { requests: { cpu: '20m' } },
        },
      },
    ],
  },
  'injection settings': {
    values: [
      {
        injection: {
          lxcfsRoot: '/run/lxcfs',
          files: ['meminfo', 'cpuinfo', 'uptime'],
          namespaceLabel: 'example.com/lxcfs',
          podLabel: 'example.com/lxcfs-inject',
          excludedNamespaces: ['kube-system', 'monitoring'],
          failurePolicy: 'Fail',
          timeoutSeconds: 10,
        },
      },
    ],
  },
  'another namespace and release name, no quota': {
    namespace: 'platform',
    releaseName: 'lx',
    values: [{ criticalPodsQuota: false }],
  },
  'self-signed, other lifetimes and schedule': {
    values: [
      {
        certificates: {
          mode: 'self-signed',
          selfSigned: {
            validDays: 90,
            caValidDays: 1000,
            renewBeforeDays: 20,
            renewSchedule: '@daily',
          },
        },
        webhook: { image: { pullSecrets: ['regcred'] }, tolerations: [{ operator: 'Exists' }] },
      },
    ],
  },
  'uninstall, step 1: clean the nodes': { values: [{ uninstall: { cleanNodes: true } }] },
  'uninstall check off': { values: [{ uninstall: { requireCleanNodes: false } }] },
  'mount-lxcfs label, as the kustomize component': {
    values: [{ injection: { mountLxcfsLabel: true } }],
  },
  'loadavg off, as the kustomize component': { values: [{ agent: { lxcfsLoadavg: false } }] },
  "network policies, as the README's values file": {
    values: [parse(readmeFile('network-policy.yaml')) as object],
  },
  'network policies, the webhook port from any source': {
    values: [{ networkPolicy: { enabled: true } }],
  },
  'webhook client certificates (webhook.clientCA)': {
    values: [{ webhook: { clientCA: CLIENT_CA } }],
  },
  'two -f files: a null removes a default, lists replace': {
    values: [
      { webhook: { nodeSelector: { pool: 'a' }, tolerations: [{ operator: 'Exists' }] } },
      {
        webhook: {
          nodeSelector: { 'kubernetes.io/os': null },
          tolerations: [{ key: 'x', operator: 'Exists' }],
        },
      },
    ],
  },
};

describe('helm chart: every value combination renders valid objects', () => {
  for (const [name, opts] of Object.entries(COMBINATIONS)) {
    it(name, () => {
      const rendered = renderChart(opts);
      assert.ok(rendered.length > 5, 'renders the install');
      validateAll(rendered.map((r) => r.object));
    });
  }
});

describe('helm chart: defaults are the kustomize cert-manager install', () => {
  it('renders the same objects as `kubectl kustomize deploy/overlays/cert-manager`, field by field', () => {
    assertSameObjects(releaseObjects(renderChart()), kustomize(overlay('cert-manager')));
  });
  it('passes the checks every kustomize install passes', () =>
    checkInstall(withUserNamespace(releaseObjects(renderChart()))));
  it('self-signed, renders the objects of deploy/overlays/self-managed (certificates aside)', () => {
    // A copy of deploy/, so that the certificates `certs` generates never land in the checkout.
    const work = mkdtempSync(join(tmpdir(), 'chart-self-managed-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    cpSync(join(repoRoot, 'deploy'), join(work, 'deploy'), { recursive: true });
    const selfManaged = join(work, 'deploy', 'overlays', 'self-managed');
    execFileSync(process.execPath, [cliPath, 'certs', '--out', join(selfManaged, 'generated')], {
      stdio: 'pipe',
    });
    const chart = releaseObjects(renderChart(COMBINATIONS['self-signed, install'])).filter(
      (o) => !selfSignedMachinery(o),
    );
    assertSameObjects(
      chart,
      kustomize(selfManaged).filter((o) => !selfSignedMachinery(o)),
      withoutCertificateMachinery,
    );
  });
  it('with injection.mountLxcfsLabel, renders the cert-manager overlay plus deploy/components/mount-lxcfs-label', () => {
    const work = mkdtempSync(join(tmpdir(), 'chart-mount-lxcfs-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    const kustomized = kustomizeWithComponent(
      overlay('cert-manager'),
      join(repoRoot, INSTALL.mountLxcfsComponent),
      work,
    );
    const chart = releaseObjects(
      renderChart(COMBINATIONS['mount-lxcfs label, as the kustomize component']),
    );
    assertSameObjects(chart, kustomized);
    checkInstall(withUserNamespace(chart), { mountLxcfsLabel: true });
  });
  it('with agent.lxcfsLoadavg=false, renders the cert-manager overlay plus deploy/components/lxcfs-loadavg-off', () => {
    const work = mkdtempSync(join(tmpdir(), 'chart-loadavg-off-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    const kustomized = kustomizeWithComponent(
      overlay('cert-manager'),
      join(repoRoot, 'deploy', 'components', 'lxcfs-loadavg-off'),
      work,
    );
    const chart = releaseObjects(
      renderChart(COMBINATIONS['loadavg off, as the kustomize component']),
    );
    assertSameObjects(chart, kustomized);
    checkInstall(withUserNamespace(chart));
  });
  it('with OpenShift values, renders the same objects as deploy/overlays/openshift', () => {
    const chart = releaseObjects(renderChart(COMBINATIONS['OpenShift: service CA and SCC']));
    assertSameObjects(chart, kustomize(overlay('openshift')));
  });
});

describe('helm chart: network policies and client certificates', () => {
  it("networkPolicy as the README's values file renders the objects of the README's kustomize example overlay", () => {
    const work = mkdtempSync(join(tmpdir(), 'chart-network-policy-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    cpSync(join(repoRoot, 'deploy'), join(work, 'deploy'), { recursive: true });
    const mine = join(work, 'deploy', 'overlays', 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'kustomization.yaml'), readmeExample('network-policy kustomization'));
    const chart = releaseObjects(
      renderChart(COMBINATIONS["network policies, as the README's values file"]),
    );
    // The component's objects carry the namespace themselves, not the part-of label of deploy/base.
    assertSameObjects(chart, kustomize(mine));
    const values = parse(readmeFile('network-policy.yaml')) as {
      networkPolicy: { apiServer: never; metrics: never };
    };
    checkNetworkPolicies(chart, values.networkPolicy);
    checkNetworkPolicies(
      releaseObjects(
        renderChart(COMBINATIONS['network policies, the webhook port from any source']),
      ),
      { apiServer: 'any', metrics: [] },
    );
  });
  it('helm test gets a policy of its own that admits its pod to the webhook port, only while it runs', () => {
    const rendered = renderChart(COMBINATIONS["network policies, as the README's values file"]).map(
      (r) => r.object,
    );
    const hooks = rendered.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
    const policy = find(hooks, 'NetworkPolicy', 'lxcfs-webhook-test');
    const pod = hooks.find((o) => o.kind === 'Pod')!;
    assert.ok(
      Number(policy.metadata.annotations!['helm.sh/hook-weight']) <
        Number(pod.metadata.annotations!['helm.sh/hook-weight'] ?? 0),
      'created before the pod',
    );
    const from = policy.spec.ingress[0].from[0].podSelector.matchLabels as Record<string, string>;
    assert.ok(
      Object.entries(from).every(([k, v]) => pod.metadata.labels![k] === v),
      'selects the test pod',
    );
    const webhookPods = find(rendered, 'Deployment', 'lxcfs-webhook').spec.template.metadata
      .labels as Record<string, string>;
    assert.ok(
      !Object.entries(from).every(([k, v]) => webhookPods[k] === v),
      "and not the webhook's pods",
    );
    assert.deepEqual(policy.spec.ingress[0].ports, [{ port: 'https', protocol: 'TCP' }]);
  });
  it('webhook.clientCA: a ConfigMap with the CA, mounted where --client-ca reads it, and a new CA rolls the pods', () => {
    const objects = releaseObjects(
      renderChart(COMBINATIONS['webhook client certificates (webhook.clientCA)']),
    );
    assert.equal(mountedClientCa(objects).trim(), CLIENT_CA.trim());
    const annotation = (ca: string) =>
      find(
        releaseObjects(renderChart({ values: [{ webhook: { clientCA: ca } }] })),
        'Deployment',
        'lxcfs-webhook',
      ).spec.template.metadata.annotations['lxcfs-webhook.io/client-ca-sha256'];
    assert.notEqual(annotation(CLIENT_CA), annotation(`${CLIENT_CA}${CLIENT_CA}`));
    assert.equal(
      serveCommand.parse(
        find(
          releaseObjects(renderChart()),
          'Deployment',
          'lxcfs-webhook',
        ).spec.template.spec.containers[0].args.slice(1),
      ).config.clientCaFile,
      undefined,
      'off by default',
    );
  });
});

describe('helm chart: values reach the objects', () => {
  const objectsOf = (name: string) => releaseObjects(renderChart(COMBINATIONS[name]));
  it('images: digest wins over tag, registry and pull secrets are used', () => {
    const objects = objectsOf('images by digest, private registry, pull secrets');
    const webhook = find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec;
    assert.equal(
      webhook.containers[0].image,
      `registry.example.com/lxcfs/webhook@sha256:${'a'.repeat(64)}`,
    );
    assert.equal(webhook.containers[0].imagePullPolicy, 'Always');
    assert.deepEqual(webhook.imagePullSecrets, [{ name: 'regcred' }]);
    const agent = find(objects, 'DaemonSet', 'lxcfs-agent').spec.template.spec;
    assert.equal(agent.containers[0].image, 'registry.example.com/lxcfs/agent:9.9.9');
    assert.deepEqual(agent.imagePullSecrets, [{ name: 'regcred' }, { name: 'other' }]);
  });
  it("webhook scheduling values, and a constraint without labelSelector gets the webhook's", () => {
    const objects = objectsOf('webhook scheduling');
    const d = find(objects, 'Deployment', 'lxcfs-webhook');
    assert.equal(d.spec.replicas, 3);
    assert.equal(d.spec.template.spec.priorityClassName, undefined);
    assert.equal(
      objects.some((o) => o.kind === 'PodDisruptionBudget'),
      false,
    );
    assert.deepEqual(
      d.spec.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels,
      d.spec.selector.matchLabels,
    );
    assert.equal(d.spec.template.spec.topologySpreadConstraints.length, 1);
    assert.ok(d.spec.template.spec.affinity.nodeAffinity);
    assert.equal(d.spec.template.spec.tolerations[0].key, 'dedicated');
  });
  it('agent values become its flags and spec', () => {
    const ds = find(objectsOf('agent settings'), 'DaemonSet', 'lxcfs-agent');
    const args: string[] = ds.spec.template.spec.containers[0].args;
    assert.ok(args.includes('--lxcfs-args=--enable-cfs --enable-pidfd -l'));
    assert.ok(args.includes('--sweep-interval=30s'));
    assert.ok(
      !args.some((a) => a.startsWith('--lxcfs-loadavg')),
      'loadavg left to the agent by default',
    );
    assert.deepEqual(ds.spec.updateStrategy, { type: 'OnDelete' });
    assert.equal(ds.spec.template.spec.tolerations, undefined);
    assert.equal(ds.spec.template.spec.priorityClassName, 'high');
  });
  it("injection values reach the webhook configuration, the webhook's flags and the agent's anchor", () => {
    const objects = objectsOf('injection settings');
    const mwc = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook');
    for (const hook of mwc.webhooks) {
      assert.equal(hook.timeoutSeconds, 10);
      assert.equal(hook.failurePolicy, 'Fail');
      const expressions: Array<{ key: string; operator: string; values?: string[] }> =
        hook.namespaceSelector.matchExpressions;
      assert.ok(
        expressions.some((e) => e.key === 'example.com/lxcfs'),
        hook.name,
      );
      assert.deepEqual(
        expressions.find((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn')
          ?.values,
        ['kube-system', 'monitoring', 'lxcfs'],
      );
      assert.equal(hook.objectSelector.matchExpressions[0].key, 'example.com/lxcfs-inject');
    }
    const args: string[] = find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec
      .containers[0].args;
    assert.ok(
      args.includes('--lxcfs-root=/run/lxcfs') && args.includes('--files=meminfo,cpuinfo,uptime'),
    );
    const ds = find(objects, 'DaemonSet', 'lxcfs-agent');
    assert.equal(ds.spec.template.spec.volumes[0].hostPath.path, '/run/lxcfs');
    assert.equal(
      ds.spec.template.metadata.labels['example.com/lxcfs-inject'],
      'disabled',
      'the agent still opts itself out',
    );
  });
  it('the release namespace is used everywhere and always excluded', () => {
    const objects = objectsOf('another namespace and release name, no quota');
    assert.equal(
      objects.some((o) => o.kind === 'Namespace' || o.kind === 'ResourceQuota'),
      false,
    );
    for (const o of objects.filter((o) => o.kind !== 'MutatingWebhookConfiguration'))
      assert.equal(o.metadata.namespace, 'platform', key(o));
    const mwc = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook');
    assert.ok(mwc.webhooks[0].namespaceSelector.matchExpressions[1].values.includes('platform'));
    assert.equal(mwc.webhooks[0].clientConfig.service.namespace, 'platform');
    const args: string[] = find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec
      .containers[0].args;
    assert.ok(
      args.includes('--tls-server-name=lxcfs-webhook.platform.svc'),
      'serve checks certificates for the Service in the release namespace',
    );
  });
  it('-f files merge as Helm merges them: maps deeply, null deletes, lists replace', () => {
    const spec = find(
      objectsOf('two -f files: a null removes a default, lists replace'),
      'Deployment',
      'lxcfs-webhook',
    ).spec.template.spec;
    assert.deepEqual(spec.nodeSelector, { pool: 'a' });
    assert.deepEqual(spec.tolerations, [{ key: 'x', operator: 'Exists' }]);
  });
  it('existing Secret: mounted by name, its caBundle in every webhook, no certificate objects', () => {
    const objects = objectsOf('existing Secret and caBundle');
    assert.equal(
      find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec.volumes[0].secret.secretName,
      'my-tls',
    );
    for (const hook of find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook').webhooks)
      assert.equal(hook.clientConfig.caBundle, 'Q0EK');
    assert.equal(
      objects.some((o) => o.kind === 'Certificate' || o.kind === 'Secret'),
      false,
    );
    assert.throws(
      () => renderRaw({ values: [{ certificates: { mode: 'secret', secretName: 'x' } }] }),
      /certificates\.caBundle: String length must be greater than or equal to 1/,
    );
  });
  it('agent.lxcfsLoadavg=false becomes --lxcfs-loadavg=false, and is refused beside agent.lxcfsArgs (the agent would refuse both)', () => {
    const args: string[] = find(
      objectsOf('loadavg off, as the kustomize component'),
      'DaemonSet',
      'lxcfs-agent',
    ).spec.template.spec.containers[0].args;
    assert.ok(args.includes('--lxcfs-loadavg=false'));
    assert.throws(
      () => renderRaw({ values: [{ agent: { lxcfsLoadavg: false, lxcfsArgs: '--enable-cfs' } }] }),
      /agent\.lxcfsLoadavg=false turns off -l among the agent's own lxcfs flags; with agent\.lxcfsArgs set, leave -l out of it instead/,
    );
  });
  it("ServiceMonitors scrape each component's health port through a metrics Service", () => {
    const objects = objectsOf('ServiceMonitors');
    for (const [name, port] of [
      ['lxcfs-webhook', 8080],
      ['lxcfs-agent', 8081],
    ] as const) {
      const sm = find(objects, 'ServiceMonitor', name);
      const svc = find(objects, 'Service', `${name}-metrics`);
      assert.deepEqual(
        sm.spec.selector.matchLabels,
        Object.fromEntries(
          Object.entries(svc.metadata.labels ?? {}).filter(
            ([k]) => k in sm.spec.selector.matchLabels,
          ),
        ),
      );
      assert.equal(svc.spec.ports[0].port, port);
      assert.equal(sm.metadata.labels?.release, 'prom');
      assert.equal(sm.spec.endpoints[0].interval, '30s');
    }
  });
});

describe('helm chart: certificates that stay put', () => {
  const MODES: Record<string, RenderOptions> = {
    'cert-manager': {},
    'self-signed': COMBINATIONS['self-signed, install']!,
    secret: COMBINATIONS['existing Secret and caBundle']!,
    'service-ca': COMBINATIONS['OpenShift: service CA and SCC']!,
  };
  for (const [mode, opts] of Object.entries(MODES)) {
    it(`${mode}: two renders are the same bytes and hold no Secret or private key (helm template, dry-runs, Argo CD)`, () => {
      const first = renderRaw(opts);
      assert.equal(renderRaw(opts), first);
      assert.equal(
        renderChart(opts).some((r) => r.object.kind === 'Secret'),
        false,
      );
      const decoded = [...first.matchAll(/[A-Za-z0-9+/]{40,}={0,2}/g)].map((m) =>
        Buffer.from(m[0], 'base64').toString('latin1'),
      );
      for (const text of [first, ...decoded]) assert.doesNotMatch(text, /PRIVATE KEY/);
    });
  }
  const selfSigned = renderChart(MODES['self-signed']).map((r) => r.object);
  const named = (kind: string, name: string) =>
    selfSigned.filter((o) => o.kind === kind && o.metadata.name === name);
  const hook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'];
  it('self-signed: a hook Job before and after install and upgrade, and a daily CronJob, run `certs --secret`', () => {
    const [job] = named('Job', 'lxcfs-webhook-certs-hook');
    assert.ok(job);
    assert.equal(hook(job), 'pre-install,pre-upgrade,post-install,post-upgrade');
    assert.equal(
      job.metadata.annotations!['helm.sh/hook-delete-policy'],
      'before-hook-creation,hook-succeeded',
    );
    const cron = find(
      releaseObjects(renderChart(MODES['self-signed'])),
      'CronJob',
      'lxcfs-webhook-certs',
    );
    assert.equal(cron.spec.schedule, '17 3 * * *');
    const args = (o: K8sObject, spec: any) => {
      void o;
      return spec.template.spec.containers[0].args as string[];
    };
    const expected = [
      'certs',
      '--secret=lxcfs-webhook-self-signed',
      '--namespace=lxcfs',
      '--service=lxcfs-webhook',
      '--webhook-configuration=lxcfs-webhook',
      '--valid-days=365',
      '--ca-valid-days=3650',
      '--renew-before-days=30',
    ];
    assert.deepEqual(args(job, job.spec), expected);
    assert.deepEqual(args(cron, cron.spec.jobTemplate.spec), [...expected, '--renew-only']);
    for (const spec of [job.spec, cron.spec.jobTemplate.spec]) {
      const pod = spec.template.spec;
      assert.equal(pod.automountServiceAccountToken, true, 'the Job calls the API');
      assert.deepEqual(
        pod.securityContext,
        find(selfSigned, 'Deployment', 'lxcfs-webhook').spec.template.spec.securityContext,
        'runs as the webhook runs',
      );
      assert.deepEqual(pod.containers[0].securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      assert.equal(
        pod.containers[0].image,
        find(selfSigned, 'Deployment', 'lxcfs-webhook').spec.template.spec.containers[0].image,
        'the webhook image',
      );
    }
    const other = renderChart(COMBINATIONS['self-signed, other lifetimes and schedule']!).map(
      (r) => r.object,
    );
    const otherJob = other.find(
      (o) => o.kind === 'Job' && o.metadata.name === 'lxcfs-webhook-certs-hook',
    )!;
    assert.deepEqual(otherJob.spec.template.spec.containers[0].args.slice(-3), [
      '--valid-days=90',
      '--ca-valid-days=1000',
      '--renew-before-days=20',
    ]);
    assert.deepEqual(otherJob.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.equal(other.find((o) => o.kind === 'CronJob')!.spec.schedule, '@daily');
  });
  it('self-signed RBAC: get and patch of its one Secret and its one webhook configuration, by name; only the install hook may create a Secret', () => {
    for (const name of ['lxcfs-webhook-certs-hook', 'lxcfs-webhook-certs']) {
      const [role] = named('Role', name);
      const [clusterRole] = named('ClusterRole', name);
      const secretRules = [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['lxcfs-webhook-self-signed'],
          verbs: ['get', 'patch'],
        },
      ];
      if (name.endsWith('-hook'))
        secretRules.push({ apiGroups: [''], resources: ['secrets'], verbs: ['create'] } as any);
      assert.deepEqual(role!.rules, secretRules, name);
      assert.deepEqual(
        clusterRole!.rules,
        [
          {
            apiGroups: ['admissionregistration.k8s.io'],
            resources: ['mutatingwebhookconfigurations'],
            resourceNames: ['lxcfs-webhook'],
            verbs: ['get', 'patch'],
          },
        ],
        name,
      );
      for (const binding of [...named('RoleBinding', name), ...named('ClusterRoleBinding', name)]) {
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name, namespace: 'lxcfs' }]);
        assert.equal(binding.roleRef.name, name);
      }
      const objects = selfSigned.filter((o) => o.metadata.name === name);
      // The hook's RBAC exists only while the hook runs: created before the Job (lower weight), deleted with it.
      for (const o of objects)
        assert.equal(hook(o) !== undefined, name.endsWith('-hook'), `${o.kind}/${name}`);
    }
  });
  it("self-signed: the webhook mounts only the serving pair of the Job's Secret, and nothing renders the Secret or a caBundle", () => {
    const volume = find(selfSigned, 'Deployment', 'lxcfs-webhook').spec.template.spec.volumes.find(
      (v: any) => v.name === 'tls',
    );
    assert.deepEqual(volume.secret, {
      secretName: INSTALL.selfSignedSecret,
      items: [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
      ],
    });
    assert.equal(
      selfSigned.some((o) => o.kind === 'Secret'),
      false,
    );
    for (const h of find(selfSigned, 'MutatingWebhookConfiguration', 'lxcfs-webhook').webhooks)
      assert.equal(h.clientConfig.caBundle, undefined);
  });
});

describe('helm chart: uninstalling', () => {
  it("step 1 (uninstall.cleanNodes) renders deploy/uninstall's clean-up DaemonSet in place of the agent and the webhook configuration", () => {
    const objects = releaseObjects(renderChart(COMBINATIONS['uninstall, step 1: clean the nodes']));
    assert.equal(
      objects.some((o) => o.kind === 'MutatingWebhookConfiguration'),
      false,
      'no new pod gets lxcfs mounts',
    );
    assert.equal(
      objects.some((o) => o.kind === 'DaemonSet' && o.metadata.name === 'lxcfs-agent'),
      false,
      'the agents stop',
    );
    const [kustomized] = kustomize(posix.join(repoRoot, 'deploy', 'uninstall'));
    assertSameObjects(
      objects.filter((o) => o.metadata.name === INSTALL.cleanupDaemonSet),
      [kustomized!],
    );
    assert.ok(
      objects.some((o) => o.kind === 'Deployment'),
      'the webhook keeps answering until helm uninstall',
    );
    const withPolicy = releaseObjects(
      renderChart({ values: [{ uninstall: { cleanNodes: true }, policy: { enabled: true } }] }),
    );
    assert.deepEqual(
      withPolicy.filter((o) => o.kind.startsWith('MutatingAdmissionPolicy')),
      [],
      'nor does the admission policy mode',
    );
  });
  it('the clean-up reaches lxcfsRoot through its parent, wherever lxcfsRoot is', () => {
    const objects = releaseObjects(
      renderChart({
        values: [{ uninstall: { cleanNodes: true }, injection: { lxcfsRoot: '/run/lxcfs' } }],
      }),
    );
    const spec = find(objects, 'DaemonSet', INSTALL.cleanupDaemonSet).spec.template.spec;
    assert.ok(spec.initContainers[0].args.includes('--lxcfs-root=/host/run/lxcfs'));
    assert.equal(spec.initContainers[0].volumeMounts[0].mountPath, '/host/run');
    assert.equal(spec.volumes[0].hostPath.path, '/run');
  });
  it('a pre-delete hook Job stops a plain helm uninstall with the step to run; not rendered once the nodes are cleaned or when turned off', () => {
    const check = (opts: RenderOptions) =>
      renderChart(opts)
        .map((r) => r.object)
        .find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'pre-delete');
    const job = check({});
    assert.ok(job);
    validateObject(job);
    assert.equal(
      job.metadata.name,
      'lxcfs-webhook-clean-nodes-first',
      'Helm < 3.18 shows only the name',
    );
    assert.equal(job.spec.backoffLimit, 0);
    assert.match(
      job.spec.template.spec.containers[0].env[0].value,
      /helm upgrade lxcfs-webhook <chart> --namespace lxcfs --reset-then-reuse-values --set uninstall\.cleanNodes=true --wait/,
    );
    assert.equal(check(COMBINATIONS['uninstall, step 1: clean the nodes']!), undefined);
    assert.equal(check(COMBINATIONS['uninstall check off']!), undefined);
  });
});

describe('helm chart: values.schema.json refuses bad values, naming them', () => {
  const refusal = (values: object) => {
    try {
      renderRaw({ values: [values] });
    } catch (err) {
      if (err instanceof RenderError) return err.message;
      throw err;
    }
    assert.fail(`accepted ${JSON.stringify(values)}`);
  };
  it('a wrong type', () =>
    assert.match(
      refusal({ webhook: { replicas: '2' } }),
      /webhook\.replicas: Invalid type\. Expected: integer, given: string/,
    ));
  it('an unknown key, at any depth', () => {
    assert.match(refusal({ replicas: 2 }), /\(root\): Additional property replicas is not allowed/);
    assert.match(
      refusal({ agent: { image: { tagg: 'x' } } }),
      /agent\.image: Additional property tagg is not allowed/,
    );
  });
  it('a bad enum', () => {
    assert.match(
      refusal({ injection: { failurePolicy: 'Sometimes' } }),
      /injection\.failurePolicy must be one of the following: "Ignore", "Fail"/,
    );
    assert.match(
      refusal({ certificates: { mode: 'vault' } }),
      /certificates\.mode must be one of the following/,
    );
  });
  it('but accepts `global`, which a parent chart passes to this one as a dependency', () => {
    assert.doesNotThrow(() => renderRaw({ values: [{ global: { imageRegistry: 'x' } }] }));
  });
  it('network policy peers and the client CA', () => {
    assert.match(
      refusal({ networkPolicy: { apiServer: [{ cidr: '10.0.0.0/8' }] } }),
      /networkPolicy\.apiServer\.0: Additional property cidr is not allowed/,
    );
    assert.match(
      refusal({ networkPolicy: { apiServer: [{ ipBlock: { cidr: '10.0.0.0' } }] } }),
      /networkPolicy\.apiServer\.0\.ipBlock\.cidr: Does not match pattern/,
    );
    assert.match(
      refusal({ webhook: { clientCA: 'client-ca.crt' } }),
      /webhook\.clientCA: Does not match pattern/,
    );
  });
  it('out of range and malformed strings', () => {
    assert.match(
      refusal({ injection: { timeoutSeconds: 31 } }),
      /injection\.timeoutSeconds: Must be less than or equal to 30/,
    );
    assert.match(
      refusal({ webhook: { image: { digest: 'latest' } } }),
      /webhook\.image\.digest: Does not match pattern/,
    );
    assert.match(
      refusal({ certificates: { caBundle: '-----BEGIN CERTIFICATE-----' } }),
      /certificates\.caBundle: Does not match pattern/,
    );
  });
  it('a null that removes what the templates need: certificates.mode, podDisruptionBudget', () => {
    assert.match(refusal({ certificates: { mode: null } }), /certificates: mode is required/);
    assert.match(
      refusal({ webhook: { podDisruptionBudget: null } }),
      /webhook: podDisruptionBudget is required/,
    );
    assert.match(refusal({ injection: null }), /\(root\): injection is required/);
  });
  it('mode secret without its Secret name or caBundle', () => {
    assert.match(
      refusal({ certificates: { mode: 'secret', caBundle: 'Q0EK' } }),
      /certificates\.secretName: String length must be greater than or equal to 1/,
    );
    assert.match(
      refusal({ certificates: { mode: 'secret', secretName: 'x', caBundle: '' } }),
      /certificates\.caBundle: String length must be greater than or equal to 1/,
    );
  });
  it('a null for any value of values.yaml is refused, or renders a valid install that still has a certificate', () => {
    const defaults = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const paths: string[][] = [];
    const walk = (v: unknown, at: string[]) => {
      if (at.length) paths.push(at);
      if (v && typeof v === 'object' && !Array.isArray(v))
        for (const [k, c] of Object.entries(v)) walk(c, [...at, k]);
    };
    walk(defaults, []);
    assert.ok(paths.length > 50, `${paths.length} values`);
    let refused = 0;
    for (const path of paths) {
      const values = path.reduceRight<unknown>((inner, k) => ({ [k]: inner }), null) as object;
      let objects: K8sObject[];
      try {
        objects = releaseObjects(renderChart({ values: [values] }));
      } catch (err) {
        assert.ok(err instanceof RenderError, `${path.join('.')}: ${(err as Error).message}`);
        // Refused by the schema, never by a template failing on nil.
        assert.match(
          err.message,
          /values don't meet the specifications of the schema/,
          `${path.join('.')}=null: ${err.message}`,
        );
        refused++;
        continue;
      }
      validateAll(objects);
      const mwc = objects.find((o) => o.kind === 'MutatingWebhookConfiguration');
      const annotations = Object.keys(mwc?.metadata.annotations ?? {});
      assert.ok(
        mwc?.webhooks.every((w: any) => w.clientConfig.caBundle) ||
          annotations.some((a) => /inject-ca/.test(a)),
        `${path.join('.')}=null: the webhook configuration still gets a CA`,
      );
      assert.ok(
        find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec.volumes[0].secret
          .secretName,
      );
    }
    assert.ok(refused > 20, `${refused} of ${paths.length} nulls refused`);
  });
});

describe('helm chart: --set as Helm reads it (pkg/strvals)', () => {
  const setRender = (set: string[], setString: string[] = []) =>
    renderRaw({ values: [mergeValues([], set, setString)] });
  it('an all-digit tag becomes a number, which the schema refuses; --set-string keeps it a string', () => {
    assert.throws(
      () => setRender(['webhook.image.tag=20240101']),
      /webhook\.image\.tag: Invalid type\. Expected: string, given: integer/,
    );
    assert.match(
      setRender([], ['webhook.image.tag=20240101']),
      /image: ghcr\.io\/lxcfs-webhook\/webhook:20240101$/m,
    );
    assert.match(
      setRender(['webhook.image.tag=0.2.0']),
      /webhook:0\.2\.0$/m,
      'a dotted version stays a string',
    );
  });
  it('files[1]=… on the empty default list leaves a null at [0], which the schema refuses', () => {
    assert.throws(
      () => setRender(['injection.files[1]=cpuinfo']),
      /injection\.files\.0: Invalid type\. Expected: string, given: null/,
    );
    assert.match(
      setRender(['injection.files[0]=meminfo', 'injection.files[1]=cpuinfo']),
      /--files=meminfo,cpuinfo/,
    );
  });
  it('a comma ends an assignment: Helm refuses the rest; a {list} or a backslash keeps it', () => {
    assert.throws(
      () => mergeValues([], ['injection.files=meminfo,cpuinfo']),
      /failed parsing --set data: key "cpuinfo" has no value/,
    );
    assert.match(setRender(['injection.files={meminfo,cpuinfo}']), /--files=meminfo,cpuinfo/);
    assert.match(setRender(['agent.lxcfsArgs=--enable-cfs\\,-l']), /--lxcfs-args=--enable-cfs,-l/);
  });
  it('a bare number of seconds for the sweep interval is accepted as the agent reads it', () => {
    assert.match(setRender(['agent.sweepInterval=30']), /--sweep-interval=30$/m);
  });
});

describe("helm chart: helm lint's rules", () => {
  const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, string>;
  it('Chart.yaml: apiVersion v2, name of its directory, version and appVersion follow package.json', () => {
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'lxcfs-webhook');
    assert.match(chart.version ?? '', /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'SemVer 2');
    assert.equal(chart.version, pkg.version);
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(chart.type, 'application');
    assert.ok(chart.description);
  });
  it('every object of every combination has the standard labels, a name, and no document is empty', () => {
    for (const opts of Object.values(COMBINATIONS)) {
      for (const { source, object } of renderChart(opts)) {
        assert.ok(
          object && object.apiVersion && object.kind && object.metadata?.name,
          `${source}: a document without apiVersion, kind or name`,
        );
        const labels = object.metadata.labels ?? {};
        assert.equal(labels['helm.sh/chart'], `lxcfs-webhook-${pkg.version}`, key(object));
        assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm', key(object));
        assert.equal(
          labels['app.kubernetes.io/instance'],
          opts.releaseName ?? 'lxcfs-webhook',
          key(object),
        );
        assert.match(source, /^lxcfs-webhook\/templates\/.+\.yaml$/);
      }
    }
  });
  it('templates have the extensions helm lint accepts, and every name is a valid DNS-1123 name', () => {
    const templates = readdirSync(join(chartDir, 'templates'), { recursive: true })
      .map(String)
      .filter((f) => f.includes('.'));
    for (const f of templates) assert.match(f, /\.(yaml|yml|tpl|txt)$/, f);
    for (const opts of Object.values(COMBINATIONS)) {
      for (const { object } of renderChart(opts)) {
        assert.match(object.metadata.name, /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, key(object));
        if (object.metadata.namespace !== undefined)
          assert.match(object.metadata.namespace, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
      }
    }
  });
  it('values.yaml is valid against values.schema.json (a render with no -f validates the defaults)', () => {
    assert.ok(
      JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')).$schema.includes(
        'draft-07',
      ),
    );
    assert.doesNotThrow(() => renderRaw());
  });
});

describe('helm chart: NOTES.txt and helm test', () => {
  it('NOTES.txt prints the verify commands for the release', () => {
    const notes = renderRaw({ notes: true, namespace: 'platform', releaseName: 'lx' });
    assert.match(notes, /kubectl -n platform rollout status deployment\/lxcfs-webhook/);
    assert.match(notes, /kubectl -n platform rollout status daemonset\/lxcfs-agent/);
    assert.match(notes, /helm test lx --namespace platform/);
  });
  it('the test Pod posts an AdmissionReview to the webhook through its Service', () => {
    const pod = renderChart()
      .map((r) => r.object)
      .find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
    assert.ok(pod, 'a helm test hook');
    validateObject(pod);
    const script: string = pod.spec.containers[0].command[2];
    assert.match(script, /host: 'lxcfs-webhook\.lxcfs\.svc', port: 443, path: '\/mutate'/);
    assert.equal(pod.spec.volumes[0].secret.secretName, 'lxcfs-webhook-tls');
  });
  it("the test Pod's script passes against a real webhook serving a certs-made pair, and fails without one", async () => {
    // End to end: the webhook serves a certificate `certs` made for the Service (what the self-signed
    // Job keeps in its Secret), and the helm test script verifies it with that ca.crt for the Service's name.
    const rendered = renderChart(COMBINATIONS['self-signed, install']).map((r) => r.object);
    const pod = rendered.find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test')!;
    assert.equal(
      pod.spec.volumes[0].secret.secretName,
      INSTALL.selfSignedSecret,
      'reads ca.crt from the Secret the webhook serves',
    );
    const script: string = pod.spec.containers[0].command[2];
    const work = mkdtempSync(join(tmpdir(), 'chart-helm-test-'));
    execFileSync(process.execPath, [cliPath, 'certs', '--out', work, '--namespace', 'lxcfs'], {
      stdio: 'pipe',
    });
    const pem = (k: string) => readFileSync(join(work, k));
    const { webhook } = await startTestWebhook({
      tls: { keyPair: parseKeyPair(pem('tls.crt'), pem('tls.key')) },
    });
    try {
      // The same script, dialling the loopback webhook under the Service's name, with ca.crt from work/.
      const local = (port: number) =>
        script
          .replace(
            "host: 'lxcfs-webhook.lxcfs.svc', port: 443",
            `host: '${HOST}', servername: 'lxcfs-webhook.lxcfs.svc', port: ${port}`,
          )
          .replaceAll("'/tls/ca.crt'", JSON.stringify(join(work, 'ca.crt')));
      assert.notEqual(local(webhook.port), script, 'the script names the Service it checks');
      const ok = await run(process.execPath, ['-e', local(webhook.port)]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /webhook answered through its Service: 200 allowed/);
      await webhook.stop();
      const down = await run(process.execPath, ['-e', local(webhook.port)]);
      assert.equal(down.code, 1, 'fails when nothing answers');
    } finally {
      await webhook.stop();
      rmSync(work, { recursive: true, force: true });
    }
  });
});

function run(
  cmd: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}
