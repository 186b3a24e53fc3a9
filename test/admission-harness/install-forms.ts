// Every install form's MutatingWebhookConfiguration, as the cluster holds it once installed, and the
// serving certificate the webhook's pod gets: each kustomize overlay (rendered by the real kustomize)
// and the chart's renders (test/chart/render.ts). Where a controller of the cluster makes the
// certificate and writes the caBundle (cert-manager's cainjector, OpenShift's service CA operator),
// it is modelled from what the rendered objects ask of it: a CA of its own, a serving certificate for
// the DNS names the Certificate lists (service CA: `<service>.<namespace>.svc` and `.cluster.local`),
// and the CA in every webhook's caBundle. Where the install itself carries the certificate (`certs`
// with the self-managed overlay, the chart's secret mode), the rendered caBundle and Secret are used as
// they are: the harness then proves that they fit together. The chart's self-signed mode is installed on
// the Helm model (test/helm), whose hook Job runs the real `certs --secret`: its Secret and the caBundle
// it wrote are what the cluster holds.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import { INSTALL } from '../../src/config/defaults.js';
import { chartDir, releaseObjects, renderChart } from '../chart/render.js';
import { Cluster } from '../helm/cluster.js';
import { Helm } from '../helm/helm.js';
import { LocalPodRunner } from '../helm/pods.js';
import { find, kustomizationWithComponent, kustomize, type K8sObject } from '../deploy/render.js';
import { cliPath, repoRoot } from '../helpers/paths.js';

export interface InstallForm {
  name: string;
  /** As installed: caBundle filled in by whatever fills it in that form. */
  configuration: K8sObject;
  /** PEM certificate and key the webhook serves with (its Secret). */
  serving: { certPem: string; keyPem: string };
  /** The namespace the install runs in (never selected). */
  ownNamespace: string;
  mountLxcfsLabel: boolean;
}

export interface FormRecipe {
  name: string;
  ownNamespace: string;
  mountLxcfsLabel: boolean;
  make: (work: string) => Promise<Omit<InstallForm, 'name' | 'ownNamespace' | 'mountLxcfsLabel'>>;
}

const overlay = (name: string) => join(repoRoot, 'deploy', 'overlays', name);
const webhookConfiguration = (objects: K8sObject[]) =>
  find(objects, 'MutatingWebhookConfiguration', INSTALL.webhookConfiguration);
const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

/** A controller that makes a CA and a serving certificate for `dnsNames`, and injects the CA into every webhook. */
async function injectedCA(
  configuration: K8sObject,
  dnsNames: string[],
): Promise<{ configuration: K8sObject; serving: { certPem: string; keyPem: string } }> {
  const ca = await createCA({ commonName: 'cluster-issued-ca', validDays: 30 });
  const serving = await issueServingCert(ca, dnsNames, { validDays: 30 });
  const installed = structuredClone(configuration);
  for (const hook of installed.webhooks)
    hook.clientConfig.caBundle = Buffer.from(ca.certPem).toString('base64');
  return { configuration: installed, serving };
}

/** cert-manager: the Certificate the install renders says which names the serving certificate has. */
async function certManager(objects: K8sObject[]) {
  const certificate = find(objects, 'Certificate', INSTALL.service);
  return injectedCA(webhookConfiguration(objects), certificate.spec.dnsNames as string[]);
}

/** OpenShift's service CA operator: a certificate for the annotated Service's cluster names. */
async function serviceCA(objects: K8sObject[]) {
  const service = find(objects, 'Service', INSTALL.service);
  const svc = `${service.metadata.name}.${service.metadata.namespace}.svc`;
  return injectedCA(webhookConfiguration(objects), [svc, `${svc}.cluster.local`]);
}

/**
 * The chart in self-signed mode as installed by Helm (the model), its certs Job run: the webhook
 * configuration with the caBundle the Job wrote, and the serving pair of the Job's Secret.
 */
export async function installedSelfSigned(
  namespace: string,
  values: Record<string, unknown>,
): Promise<{ configuration: K8sObject; serving: { certPem: string; keyPem: string } }> {
  const cluster = new Cluster();
  const runner = new LocalPodRunner();
  try {
    cluster.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await new Helm(cluster, 3, runner).install('lxcfs-webhook', chartDir, {
      namespace,
      values: [{ ...values, certificates: { mode: 'self-signed' } }],
    });
  } finally {
    await runner.close();
  }
  const secret = cluster.get({ kind: 'Secret', namespace, name: INSTALL.selfSignedSecret });
  return {
    configuration: cluster.get({
      kind: 'MutatingWebhookConfiguration',
      name: INSTALL.webhookConfiguration,
    }),
    serving: { certPem: decode(secret.data['tls.crt']), keyPem: decode(secret.data['tls.key']) },
  };
}

function certs(out: string, namespace = INSTALL.namespace): void {
  execFileSync(process.execPath, [cliPath, 'certs', '--out', out, '--namespace', namespace], {
    stdio: 'pipe',
  });
}

/** The overlay plus the mount-lxcfs-label component, as a user adds it to their own kustomization. */
function withMountLxcfsComponent(work: string, overlayDir: string): string {
  return kustomizationWithComponent(
    overlayDir,
    join(repoRoot, INSTALL.mountLxcfsComponent),
    join(work, 'with-component'),
  );
}

export const INSTALL_FORMS: FormRecipe[] = [
  {
    name: 'kustomize deploy/overlays/self-managed (certs)',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: false,
    make: async (work) => {
      cpSync(join(repoRoot, 'deploy'), join(work, 'deploy'), { recursive: true });
      const selfManaged = join(work, 'deploy', 'overlays', 'self-managed');
      certs(join(selfManaged, 'generated'));
      const objects = kustomize(selfManaged);
      const secret = find(objects, 'Secret', 'lxcfs-webhook-tls');
      return {
        configuration: webhookConfiguration(objects),
        serving: {
          certPem: decode(secret.data['tls.crt']),
          keyPem: decode(secret.data['tls.key']),
        },
      };
    },
  },
  {
    name: 'kustomize deploy/overlays/cert-manager (cainjector)',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: false,
    make: async () => certManager(kustomize(overlay('cert-manager'))),
  },
  {
    name: 'kustomize deploy/overlays/openshift (service CA)',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: false,
    make: async () => serviceCA(kustomize(overlay('openshift'))),
  },
  {
    name: 'kustomize cert-manager + components/mount-lxcfs-label',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: true,
    make: async (work) =>
      certManager(kustomize(withMountLxcfsComponent(work, overlay('cert-manager')))),
  },
  {
    name: 'chart defaults (cert-manager, cainjector)',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: false,
    make: async () => certManager(releaseObjects(renderChart())),
  },
  {
    name: 'chart certificates.mode=self-signed, namespace platform',
    ownNamespace: 'platform',
    mountLxcfsLabel: false,
    make: async () => installedSelfSigned('platform', {}),
  },
  {
    name: 'chart certificates.mode=secret (certs), mountLxcfsLabel',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: true,
    make: async (work) => {
      certs(join(work, 'own'));
      const ca = readFileSync(join(work, 'own', 'ca.crt'));
      const objects = releaseObjects(
        renderChart({
          values: [
            {
              certificates: {
                mode: 'secret',
                secretName: 'my-webhook-tls',
                caBundle: ca.toString('base64'),
              },
              injection: { mountLxcfsLabel: true },
            },
          ],
        }),
      );
      return {
        configuration: webhookConfiguration(objects),
        serving: {
          certPem: readFileSync(join(work, 'own', 'tls.crt'), 'utf8'),
          keyPem: readFileSync(join(work, 'own', 'tls.key'), 'utf8'),
        },
      };
    },
  },
  {
    name: 'chart certificates.mode=service-ca, openshift.enabled',
    ownNamespace: 'lxcfs',
    mountLxcfsLabel: false,
    make: async () =>
      serviceCA(
        releaseObjects(
          renderChart({
            values: [{ certificates: { mode: 'service-ca' }, openshift: { enabled: true } }],
          }),
        ),
      ),
  },
];

/** Makes one install form in a scratch directory of its own. */
export async function makeForm(recipe: FormRecipe): Promise<InstallForm> {
  const work = mkdtempSync(join(tmpdir(), 'harness-form-'));
  try {
    return {
      name: recipe.name,
      ownNamespace: recipe.ownNamespace,
      mountLxcfsLabel: recipe.mountLxcfsLabel,
      ...(await recipe.make(work)),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The one Service every webhook of a configuration calls. */
function serviceOf(configuration: K8sObject): { namespace: string; name: string; port: number } {
  const services = (
    configuration.webhooks as Array<{
      clientConfig: { service: { namespace: string; name: string; port?: number } };
    }>
  ).map(({ clientConfig: { service } }) => ({ ...service, port: service.port ?? 443 }));
  const keys = new Set(services.map((s) => `${s.namespace}/${s.name}:${s.port}`));
  if (keys.size !== 1)
    throw new Error(`the webhooks call ${keys.size} Services: ${[...keys].join(', ')}`);
  return services[0]!;
}

/** `namespace/name:port` of the Service every webhook of a configuration calls. */
export function serviceKey(configuration: K8sObject): string {
  const service = serviceOf(configuration);
  return `${service.namespace}/${service.name}:${service.port}`;
}

/** The name the API server checks the serving certificate for: `<service>.<namespace>.svc`. */
export function serverNameOf(configuration: K8sObject): string {
  const service = serviceOf(configuration);
  return `${service.name}.${service.namespace}.svc`;
}
