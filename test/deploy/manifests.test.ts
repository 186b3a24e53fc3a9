// The install overlays, rendered by the real kustomize and checked for the cross-references a typo
// breaks (check-install.ts), plus what each overlay adds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, describe, it } from 'node:test';
import { cliPath, repoRoot } from '../helpers/paths.js';
import { command as agentCommand } from '../../src/cli/agent.js';
import { DEFAULT_LXCFS_ROOT, INSTALL } from '../../src/config/defaults.js';
import { webhookEntries, webhookFor } from '../../src/audit/selection.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { checkInstall } from './check-install.js';
import { find, kustomize, kustomizeWithComponent } from './render.js';

const overlay = (name: string) => posix.join(repoRoot, 'deploy', 'overlays', name);

describe('deploy/overlays/cert-manager', () => {
  const objects = kustomize(overlay('cert-manager'));
  it('renders valid objects with consistent cross-references', () => checkInstall(objects));
  it("issues the Secret the webhook mounts, for the Service's DNS names, and injects its CA", () => {
    const cert = find(objects, 'Certificate', 'lxcfs-webhook');
    assert.equal(cert.spec.secretName, 'lxcfs-webhook-tls');
    assert.ok(cert.spec.dnsNames.includes('lxcfs-webhook.lxcfs.svc'));
    assert.deepEqual(cert.spec.privateKey, {
      algorithm: 'ECDSA',
      size: 256,
      rotationPolicy: 'Always',
    });
    const issuer = find(objects, 'Issuer', cert.spec.issuerRef.name);
    const ca = find(objects, 'Certificate', 'lxcfs-webhook-ca');
    assert.equal(issuer.spec.ca.secretName, ca.spec.secretName);
    const mwc = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook');
    assert.equal(
      mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'],
      `${cert.metadata.namespace}/${cert.metadata.name}`,
    );
  });
});

describe('deploy/overlays/self-managed, with certificates from `lxcfs-webhook certs`', () => {
  // A copy of deploy/, so the generated files never land in the checkout.
  const work = mkdtempSync(join(tmpdir(), 'lxcfs-deploy-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  cpSync(join(repoRoot, 'deploy'), join(work, 'deploy'), { recursive: true });
  const generated = join(work, 'deploy', 'overlays', 'self-managed', 'generated');
  const certs = () =>
    execFileSync(process.execPath, [cliPath, 'certs', '--out', generated], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  certs();
  const objects = kustomize(join(work, 'deploy', 'overlays', 'self-managed'));

  it('renders valid objects with consistent cross-references', () => checkInstall(objects));

  it('puts a certificate for the Service in the mounted Secret and its CA in both webhooks', () => {
    const secret = find(objects, 'Secret', 'lxcfs-webhook-tls');
    assert.equal(secret.type, 'kubernetes.io/tls');
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    const key = createPrivateKey(Buffer.from(secret.data['tls.key'], 'base64'));
    assert.ok(cert.checkPrivateKey(key), 'key matches certificate');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(cert.checkHost('lxcfs-webhook.lxcfs.svc'), 'valid for the name the API server dials');
    const mwc = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook');
    for (const hook of mwc.webhooks) {
      const ca = new X509Certificate(Buffer.from(hook.clientConfig.caBundle, 'base64'));
      assert.ok(cert.verify(ca.publicKey), `${hook.name}: caBundle signed the serving certificate`);
      assert.equal(
        hook.clientConfig.service.name,
        'lxcfs-webhook',
        'the patch kept the service reference',
      );
    }
  });

  it('keeps the CA on a second run, so rotation does not change the caBundle', () => {
    const caBefore = readFileSync(join(generated, 'ca.crt'), 'utf8');
    const certBefore = readFileSync(join(generated, 'tls.crt'), 'utf8');
    certs();
    assert.equal(readFileSync(join(generated, 'ca.crt'), 'utf8'), caBefore);
    assert.notEqual(readFileSync(join(generated, 'tls.crt'), 'utf8'), certBefore);
  });
});

describe('deploy/overlays/openshift', () => {
  const objects = kustomize(overlay('openshift'));
  it('renders valid objects with consistent cross-references', () => checkInstall(objects));
  it('lets the service CA issue the webhook Secret and lets only the agent use its SCC', () => {
    const service = find(objects, 'Service', 'lxcfs-webhook');
    assert.equal(
      service.metadata.annotations?.['service.beta.openshift.io/serving-cert-secret-name'],
      'lxcfs-webhook-tls',
    );
    assert.equal(
      find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook').metadata.annotations?.[
        'service.beta.openshift.io/inject-cabundle'
      ],
      'true',
    );
    const scc = find(objects, 'SecurityContextConstraints', 'lxcfs-agent');
    assert.equal(scc.allowHostNetwork, false);
    assert.equal(scc.allowHostPID, true);
    const binding = find(objects, 'RoleBinding', 'lxcfs-agent-scc');
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: 'lxcfs-agent', namespace: 'lxcfs' },
    ]);
    const role = find(objects, 'ClusterRole', binding.roleRef.name);
    assert.deepEqual(role.rules, [
      {
        apiGroups: ['security.openshift.io'],
        resources: ['securitycontextconstraints'],
        resourceNames: [scc.metadata.name],
        verbs: ['use'],
      },
    ]);
    assert.equal(
      find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec.securityContext.runAsUser,
      undefined,
    );
  });
});

describe('deploy/overlays/openshift: the SCC for injected workloads', () => {
  const objects = kustomize(overlay('openshift'));
  // OpenShift's restricted-v2 (4.11 and later), as `oc get scc restricted-v2 -o yaml` shows it, without metadata.
  const restrictedV2 = {
    allowHostDirVolumePlugin: false,
    allowHostIPC: false,
    allowHostNetwork: false,
    allowHostPID: false,
    allowHostPorts: false,
    allowPrivilegeEscalation: false,
    allowPrivilegedContainer: false,
    allowedCapabilities: ['NET_BIND_SERVICE'],
    defaultAddCapabilities: null,
    fsGroup: { type: 'MustRunAs' },
    groups: [],
    priority: null,
    readOnlyRootFilesystem: false,
    requiredDropCapabilities: ['ALL'],
    runAsUser: { type: 'MustRunAsRange' },
    seLinuxContext: { type: 'MustRunAs' },
    seccompProfiles: ['runtime/default'],
    supplementalGroups: { type: 'RunAsAny' },
    users: [],
    volumes: [
      'configMap',
      'csi',
      'downwardAPI',
      'emptyDir',
      'ephemeral',
      'persistentVolumeClaim',
      'projected',
      'secret',
    ],
  };

  it('is restricted-v2 plus host directory volumes, nothing else', () => {
    const {
      apiVersion: _a,
      kind: _k,
      metadata: _m,
      ...scc
    } = find(objects, 'SecurityContextConstraints', 'lxcfs-workloads');
    assert.deepEqual(
      { ...scc, volumes: [...scc.volumes].sort() },
      {
        ...restrictedV2,
        allowHostDirVolumePlugin: true,
        volumes: [...restrictedV2.volumes, 'hostPath'].sort(),
      },
    );
  });

  it('is granted by a ClusterRole that allows using it and nothing else, bound by no one until an admin does', () => {
    const role = find(objects, 'ClusterRole', 'lxcfs-workloads-scc');
    assert.deepEqual(role.rules, [
      {
        apiGroups: ['security.openshift.io'],
        resources: ['securitycontextconstraints'],
        resourceNames: ['lxcfs-workloads'],
        verbs: ['use'],
      },
    ]);
    assert.ok(
      !objects.some((o) => /Binding$/.test(o.kind) && o.roleRef?.name === role.metadata.name),
    );
  });
});

describe('deploy/components/mount-lxcfs-label, on top of each overlay', () => {
  // A kustomization of our own in a temporary directory: the overlay plus the component, as a user adds it.
  const work = mkdtempSync(join(tmpdir(), 'lxcfs-mount-lxcfs-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  for (const name of ['cert-manager', 'openshift']) {
    it(`${name}: also selects namespaces labelled mount-lxcfs=enabled, still once per pod`, () => {
      const objects = kustomizeWithComponent(
        overlay(name),
        join(repoRoot, INSTALL.mountLxcfsComponent),
        join(work, name),
      );
      checkInstall(objects, { mountLxcfsLabel: true });
      const mwc = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook');
      assert.ok(
        mwc.webhooks.some((h: any) =>
          h.namespaceSelector.matchExpressions.some(
            (e: any) => e.key === 'mount-lxcfs' && e.operator === 'In',
          ),
        ),
      );
    });
  }
  it('is off by default: without it, a namespace labelled only mount-lxcfs=enabled is not selected', () => {
    assert.equal(webhookFor({ name: 'shop', labels: { 'mount-lxcfs': 'enabled' } }, {}), undefined);
    assert.equal(
      webhookFor(
        { name: 'shop', labels: { 'mount-lxcfs': 'enabled' } },
        {},
        webhookEntries({ mountLxcfsLabel: true }),
      )?.mode,
      'enabled',
    );
  });
});

describe('deploy/components/lxcfs-loadavg-off, on top of each overlay', () => {
  const work = mkdtempSync(join(tmpdir(), 'lxcfs-loadavg-off-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  for (const name of ['cert-manager', 'openshift']) {
    it(`${name}: the agent runs lxcfs without -l, and nothing else changes`, () => {
      const objects = kustomizeWithComponent(
        overlay(name),
        join(repoRoot, 'deploy', 'components', 'lxcfs-loadavg-off'),
        join(work, name),
      );
      checkInstall(objects);
      const agent = find(objects, 'DaemonSet', 'lxcfs-agent').spec.template.spec.containers[0];
      assert.equal(agentCommand.parse(agent.args.slice(1)).lxcfsLoadavg, false);
      const without = find(kustomize(overlay(name)), 'DaemonSet', 'lxcfs-agent').spec.template.spec
        .containers[0];
      assert.deepEqual(agent.args, [...without.args, '--lxcfs-loadavg=false']);
      assert.equal(agentCommand.parse(without.args.slice(1)).lxcfsLoadavg, true);
    });
  }
});

describe('deploy/uninstall', () => {
  const objects = kustomize(posix.join(repoRoot, 'deploy', 'uninstall'));
  it("runs `agent --uninstall` on every node against the host's /var/lib/lxcfs, with unmounts reaching the host", () => {
    objects.forEach(validateObject);
    const daemonSet = find(objects, 'DaemonSet', 'lxcfs-cleanup');
    const pod = daemonSet.spec.template.spec;
    const cleanup = pod.initContainers[0];
    assert.equal(cleanup.args[0], 'agent');
    const options = agentCommand.parse(cleanup.args.slice(1));
    assert.equal(options.uninstall, true);
    const mount = cleanup.volumeMounts.find((m: any) =>
      options.lxcfsRoot.startsWith(`${m.mountPath}/`),
    );
    assert.ok(
      mount,
      '--lxcfs-root is below a mounted volume (so the directory itself can be removed)',
    );
    assert.equal(mount.mountPropagation, 'Bidirectional');
    const hostPath = pod.volumes.find((v: any) => v.name === mount.name).hostPath.path;
    assert.equal(
      posix.join(hostPath, posix.relative(mount.mountPath, options.lxcfsRoot)),
      DEFAULT_LXCFS_ROOT,
    );
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    assert.equal(daemonSet.metadata.namespace, 'lxcfs');
  });
});
