// The Helm chart rendered for real (test/chart/renderer): the default render against the kustomize
// cert-manager install, every value combination against the Kubernetes schemas, the schema's refusals,
// the self-signed certificate across upgrades, and helm lint's rules.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { cliPath, repoRoot } from '../helpers/paths.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { HOST, startTestWebhook } from '../helpers/webhook.js';
import { parseKeyPair } from '../../src/admission/tls.js';
import { INSTALL } from '../../src/config/defaults.js';
import { checkInstall } from '../deploy/check-install.js';
import { find, kustomize, type K8sObject } from '../deploy/render.js';
import {
  chartDir,
  releaseObjects,
  RenderError,
  renderChart,
  renderRaw,
  type RenderOptions,
} from './render.js';

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
 * Certificates made at install differ on every run, whoever makes them: the Secret's values and the
 * caBundles are replaced by what they must be (a certificate, a key, the CA that signed the serving
 * certificate; the self-signed test below checks those). The chart's Secret also keeps ca.crt, which it
 * reads back on upgrade; the self-managed overlay keeps the CA in its generated/ directory instead.
 */
function withoutGeneratedCertificates(o: K8sObject): K8sObject {
  const copy = structuredClone(o);
  if (copy.kind === 'Secret' && copy.metadata.name === 'lxcfs-webhook-tls') {
    delete copy.data['ca.crt'];
    copy.data = Object.fromEntries(Object.keys(copy.data).map((k) => [k, 'generated']));
  }
  if (copy.kind === 'MutatingWebhookConfiguration') {
    for (const hook of copy.webhooks)
      if (hook.clientConfig.caBundle) hook.clientConfig.caBundle = 'generated';
  }
  return copy;
}

/** Compares two installs object by object, field by field, naming the first object that differs. */
function assertSameObjects(
  chart: K8sObject[],
  kustomized: K8sObject[],
  normalize = (o: K8sObject) => o,
): void {
  const byKey = (objects: K8sObject[]) =>
    new Map(
      objects
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

/** OpenShift's SCC has no schema package here; the OpenShift test compares it with the overlay's instead. */
const NO_SCHEMA_HERE = new Set(['SecurityContextConstraints']);

/** Every object against its schema. */
function validateAll(objects: K8sObject[]): void {
  for (const o of objects) if (!NO_SCHEMA_HERE.has(o.kind)) validateObject(o);
}

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
  'another namespace, no namespace object or quota': {
    namespace: 'platform',
    releaseName: 'lx',
    values: [{ createNamespace: false, criticalPodsQuota: false }],
  },
  'mount-lxcfs label, as the kustomize component': {
    values: [{ injection: { mountLxcfsLabel: true } }],
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
    checkInstall(releaseObjects(renderChart())));
  it('self-signed, renders the objects of deploy/overlays/self-managed (certificates aside)', () => {
    // A copy of deploy/, so that the certificates `certs` generates never land in the checkout.
    const work = mkdtempSync(join(tmpdir(), 'chart-self-managed-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    cpSync(join(repoRoot, 'deploy'), join(work, 'deploy'), { recursive: true });
    const selfManaged = join(work, 'deploy', 'overlays', 'self-managed');
    execFileSync(process.execPath, [cliPath, 'certs', '--out', join(selfManaged, 'generated')], {
      stdio: 'pipe',
    });
    const chart = releaseObjects(renderChart(COMBINATIONS['self-signed, install']));
    assertSameObjects(chart, kustomize(selfManaged), withoutGeneratedCertificates);
  });
  it('with injection.mountLxcfsLabel, renders the cert-manager overlay plus deploy/components/mount-lxcfs-label', () => {
    const work = mkdtempSync(join(tmpdir(), 'chart-mount-lxcfs-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    writeFileSync(
      join(work, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${relative(work, overlay('cert-manager'))}]`,
        `components: [${relative(work, join(repoRoot, INSTALL.mountLxcfsComponent))}]`,
        '',
      ].join('\n'),
    );
    const chart = releaseObjects(
      renderChart(COMBINATIONS['mount-lxcfs label, as the kustomize component']),
    );
    assertSameObjects(chart, kustomize(work));
    checkInstall(chart, { mountLxcfsLabel: true });
  });
  it('with OpenShift values, renders the same objects as deploy/overlays/openshift', () => {
    const chart = releaseObjects(renderChart(COMBINATIONS['OpenShift: service CA and SCC']));
    assertSameObjects(chart, kustomize(overlay('openshift')));
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
    const objects = objectsOf('another namespace, no namespace object or quota');
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
      /certificates.caBundle is required/,
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

describe('helm chart: self-signed certificates', () => {
  const secretOf = (objects: K8sObject[]) => find(objects, 'Secret', 'lxcfs-webhook-tls');
  it('signs a serving certificate for the Service with a CA that is the caBundle of every webhook', () => {
    const objects = releaseObjects(renderChart(COMBINATIONS['self-signed, install']));
    const data = secretOf(objects).data;
    const ca = new X509Certificate(Buffer.from(data['ca.crt'], 'base64'));
    const cert = new X509Certificate(Buffer.from(data['tls.crt'], 'base64'));
    assert.ok(cert.verify(ca.publicKey));
    assert.ok(cert.checkHost('lxcfs-webhook.lxcfs.svc'));
    for (const hook of find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook').webhooks)
      assert.equal(hook.clientConfig.caBundle, data['ca.crt']);
  });
  it('keeps the Secret and caBundle across helm upgrade (lookup reads the existing Secret)', () => {
    const installed = releaseObjects(renderChart(COMBINATIONS['self-signed, install']));
    const upgraded = releaseObjects(
      renderChart({ ...COMBINATIONS['self-signed, install'], upgradeFrom: [secretOf(installed)] }),
    );
    assert.deepEqual(secretOf(upgraded).data, secretOf(installed).data);
    assert.deepEqual(
      find(upgraded, 'MutatingWebhookConfiguration', 'lxcfs-webhook'),
      find(installed, 'MutatingWebhookConfiguration', 'lxcfs-webhook'),
    );
    // Without the Secret in the cluster a new CA is made: the test above would fail if lookup were ignored.
    const again = releaseObjects(renderChart(COMBINATIONS['self-signed, install']));
    assert.notEqual(secretOf(again).data['ca.crt'], secretOf(installed).data['ca.crt']);
  });
  it('makes a new pair when the existing Secret lacks one of ca.crt, tls.crt, tls.key', () => {
    const installed = secretOf(releaseObjects(renderChart(COMBINATIONS['self-signed, install'])));
    const partial = {
      ...installed,
      data: { 'tls.crt': installed.data['tls.crt'], 'tls.key': installed.data['tls.key'] },
    };
    const upgraded = secretOf(
      releaseObjects(
        renderChart({ ...COMBINATIONS['self-signed, install'], upgradeFrom: [partial] }),
      ),
    );
    assert.notEqual(upgraded.data['tls.crt'], installed.data['tls.crt']);
    assert.deepEqual(Object.keys(upgraded.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
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
  it("the test Pod's script passes against a real webhook serving the self-signed Secret, and fails without one", async () => {
    // End to end for mode self-signed: the webhook serves the chart's certificate and key, and the helm
    // test script verifies it with the chart's ca.crt for the Service's DNS name.
    const rendered = renderChart(COMBINATIONS['self-signed, install']).map((r) => r.object);
    const secret = find(rendered, 'Secret', 'lxcfs-webhook-tls').data as Record<string, string>;
    const pem = (k: string) => Buffer.from(secret[k]!, 'base64');
    const pod = rendered.find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test')!;
    const script: string = pod.spec.containers[0].command[2];
    const { webhook } = await startTestWebhook({
      tls: { keyPair: parseKeyPair(pem('tls.crt'), pem('tls.key')) },
    });
    const work = mkdtempSync(join(tmpdir(), 'chart-helm-test-'));
    try {
      writeFileSync(join(work, 'ca.crt'), pem('ca.crt'));
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
