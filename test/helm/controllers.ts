// What other controllers do to the objects the chart makes, reduced to their observable effect, so the
// model can ask "does the API server trust the certificate the webhook serves?" in every certificate
// mode: cert-manager (a Certificate's Secret, issued by a selfSigned or CA Issuer; cainjector copying
// the CA into a webhook configuration annotated cert-manager.io/inject-ca-from) and OpenShift's service
// CA operator (a Secret for a Service annotated serving-cert-secret-name; the CA into a configuration
// annotated inject-cabundle). Certificates are made with the project's CA code: the point is which
// Secret and which caBundle exist, not how cert-manager builds them.
import { X509Certificate } from 'node:crypto';
import { createCA, issueServingCert, loadCA } from '../../src/certs/authority.js';
import type { Cluster, K8sObject } from './cluster.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const pem = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

/** One reconcile pass of cert-manager and its cainjector. */
export async function certManager(cluster: Cluster): Promise<void> {
  // Issuers first: a CA Issuer needs its CA Certificate's Secret, which a selfSigned Issuer issues.
  for (let pass = 0; pass < 2; pass++) {
    for (const cert of cluster.list('Certificate')) {
      const ns = cert.metadata.namespace!;
      const issuer = cluster.tryGet({
        kind: 'Issuer',
        namespace: ns,
        name: cert.spec.issuerRef.name,
      });
      const existing = cluster.tryGet({
        kind: 'Secret',
        namespace: ns,
        name: cert.spec.secretName,
      });
      // cert-manager keeps a Secret it issued for this Certificate, and issues over any other of that name.
      if (
        !issuer ||
        existing?.metadata.annotations?.['cert-manager.io/certificate-name'] === cert.metadata.name
      )
        continue;
      let data: Record<string, string>;
      if (issuer.spec.selfSigned) {
        const ca = await createCA({
          commonName: cert.spec.commonName ?? cert.metadata.name,
          validDays: 3650,
        });
        data = { 'tls.crt': b64(ca.certPem), 'tls.key': b64(ca.keyPem), 'ca.crt': b64(ca.certPem) };
      } else {
        const caSecret = cluster.tryGet({
          kind: 'Secret',
          namespace: ns,
          name: issuer.spec.ca.secretName,
        });
        if (!caSecret) continue;
        const ca = await loadCA(pem(caSecret.data['tls.crt']), pem(caSecret.data['tls.key']));
        const issued = await issueServingCert(ca, cert.spec.dnsNames, { validDays: 365 });
        data = {
          'tls.crt': b64(issued.certPem),
          'tls.key': b64(issued.keyPem),
          'ca.crt': b64(ca.certPem),
        };
      }
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: {
          name: cert.spec.secretName,
          namespace: ns,
          annotations: { 'cert-manager.io/certificate-name': cert.metadata.name },
        },
        data,
      };
      if (existing)
        cluster.update({ ...secret, metadata: { ...existing.metadata, ...secret.metadata } });
      else cluster.create(secret);
    }
  }
  for (const mwc of cluster.list('MutatingWebhookConfiguration')) {
    const from = mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'];
    if (!from) continue;
    const [ns, name] = from.split('/') as [string, string];
    const cert = cluster.tryGet({ kind: 'Certificate', namespace: ns, name });
    const secret =
      cert && cluster.tryGet({ kind: 'Secret', namespace: ns, name: cert.spec.secretName });
    if (secret) injectCaBundle(cluster, mwc, secret.data['ca.crt']);
  }
}

/**
 * One pass of OpenShift's service CA operator: a Secret for each annotated Service, unless a Secret of
 * that name exists that it did not make (it then leaves it and reports an error on the Service); the
 * service CA into every annotated webhook configuration.
 */
const serviceCa = createCA({ commonName: 'openshift-service-serving-signer', validDays: 3650 });
export async function serviceCaOperator(cluster: Cluster): Promise<void> {
  const ca = await serviceCa;
  for (const svc of cluster.list('Service')) {
    const name = svc.metadata.annotations?.['service.beta.openshift.io/serving-cert-secret-name'];
    const ns = svc.metadata.namespace!;
    if (!name || cluster.tryGet({ kind: 'Secret', namespace: ns, name })) continue;
    const issued = await issueServingCert(
      ca,
      [`${svc.metadata.name}.${ns}.svc`, `${svc.metadata.name}.${ns}.svc.cluster.local`],
      { validDays: 730 },
    );
    cluster.create({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name,
        namespace: ns,
        annotations: { 'service.beta.openshift.io/originating-service-name': svc.metadata.name },
      },
      data: { 'tls.crt': b64(issued.certPem), 'tls.key': b64(issued.keyPem) },
    });
  }
  for (const mwc of cluster.list('MutatingWebhookConfiguration')) {
    if (mwc.metadata.annotations?.['service.beta.openshift.io/inject-cabundle'] === 'true')
      injectCaBundle(cluster, mwc, b64(ca.certPem));
  }
}

function injectCaBundle(cluster: Cluster, mwc: K8sObject, caBundle: string): void {
  if (mwc.webhooks.every((w: any) => w.clientConfig.caBundle === caBundle)) return;
  for (const w of mwc.webhooks) w.clientConfig.caBundle = caBundle;
  cluster.update(mwc);
}

export interface TrustCheck {
  ok: boolean;
  detail: string;
}

/**
 * Does every webhook of the configuration trust what the webhook Deployment serves? The served pair is
 * the one in the Secret its `tls` volume names (as the kubelet would project it); each webhook's
 * caBundle must verify it for the Service's DNS name.
 */
export function apiServerTrustsWebhook(
  cluster: Cluster,
  namespace: string,
  configuration = 'lxcfs-webhook',
): TrustCheck {
  const mwc = cluster.tryGet({ kind: 'MutatingWebhookConfiguration', name: configuration });
  if (!mwc) return { ok: false, detail: `no MutatingWebhookConfiguration ${configuration}` };
  const deployment = cluster.tryGet({ kind: 'Deployment', namespace, name: 'lxcfs-webhook' });
  if (!deployment) return { ok: false, detail: 'no webhook Deployment' };
  const volume = deployment.spec.template.spec.volumes.find((v: any) => v.name === 'tls');
  const secret = cluster.tryGet({ kind: 'Secret', namespace, name: volume.secret.secretName });
  if (!secret)
    return {
      ok: false,
      detail: `the webhook mounts Secret ${volume.secret.secretName}, which does not exist`,
    };
  for (const item of volume.secret.items ?? [])
    if (!(item.key in secret.data))
      return { ok: false, detail: `Secret ${secret.metadata.name} has no ${item.key}` };
  const served = new X509Certificate(pem(secret.data['tls.crt']));
  for (const w of mwc.webhooks) {
    const svc = w.clientConfig.service;
    const host = `${svc.name}.${svc.namespace}.svc`;
    const bundle = pem(w.clientConfig.caBundle);
    const cas = [
      ...bundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g),
    ].map((m) => new X509Certificate(m[0]));
    if (cas.length === 0) return { ok: false, detail: `webhook ${w.name} has no caBundle` };
    if (!cas.some((ca) => served.verify(ca.publicKey)))
      return {
        ok: false,
        detail: `webhook ${w.name}: no CA of its caBundle signed the served certificate (${served.subject})`,
      };
    if (served.checkHost(host) === undefined)
      return {
        ok: false,
        detail: `webhook ${w.name}: the served certificate does not name ${host}`,
      };
  }
  return {
    ok: true,
    detail: `${mwc.webhooks.length} webhooks trust Secret ${secret.metadata.name}`,
  };
}
