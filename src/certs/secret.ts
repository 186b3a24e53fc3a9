// What `certs --secret` decides about the Secret it keeps (pure; the command does the API calls): make
// the CA and serving certificate when there is none, refuse a Secret it did not make, renew the serving
// certificate (or the CA) before it expires or when it no longer fits the Service, and the caBundle the
// webhook configuration should carry.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { CA_BUNDLE_OVERLAP_MS, CERTS_SECRET_LABEL } from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import { createCA, issueServingCert, loadCA, type CertificateAuthority } from './authority.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The Secret's data keys: the serving pair (what the webhook mounts), the CA and its key. */
export interface CertsSecretData {
  'tls.crt': string;
  'tls.key': string;
  'ca.crt': string;
  'ca.key': string;
}

export interface SecretLike {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
  };
  data?: Record<string, string>;
}

export interface CertsSettings {
  secret: string;
  namespace: string;
  dnsNames: string[];
  validDays: number;
  caValidDays: number;
  renewBeforeDays: number;
  now: Date;
}

export type SecretDecision =
  | { action: 'keep'; data: CertsSecretData; reason: string }
  | { action: 'create' | 'renew-serving' | 'renew-ca'; data: CertsSecretData; reason: string };

const pem = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');
const b64 = (text: string) => Buffer.from(text).toString('base64');
const daysLeft = (cert: X509Certificate, now: Date) =>
  (Date.parse(cert.validTo) - now.getTime()) / DAY_MS;

/** True when the Secret carries the label `certs` puts on the Secrets it makes. */
export function madeByCerts(secret: SecretLike): boolean {
  return secret.metadata.labels?.[CERTS_SECRET_LABEL.key] === CERTS_SECRET_LABEL.value;
}

async function issue(ca: CertificateAuthority, s: CertsSettings): Promise<CertsSecretData> {
  const serving = await issueServingCert(ca, s.dnsNames, { validDays: s.validDays, now: s.now });
  return {
    'tls.crt': b64(serving.certPem),
    'tls.key': b64(serving.keyPem),
    'ca.crt': b64(ca.certPem),
    'ca.key': b64(ca.keyPem),
  };
}

async function fresh(s: CertsSettings): Promise<CertsSecretData> {
  return issue(
    await createCA({ commonName: `${s.dnsNames[0]}-ca`, validDays: s.caValidDays, now: s.now }),
    s,
  );
}

/** Why the serving pair must be replaced, or undefined when it is good for more than renewBeforeDays. */
function servingProblem(
  data: Record<string, string>,
  ca: X509Certificate,
  s: CertsSettings,
): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem(data['tls.crt']));
    if (!cert.checkPrivateKey(createPrivateKey(pem(data['tls.key']))))
      return 'tls.key is not the key of tls.crt';
  } catch (err) {
    return `the serving certificate or key cannot be read (${(err as Error).message})`;
  }
  if (!cert.verify(ca.publicKey))
    return 'the serving certificate is not signed by the CA in ca.crt';
  const missing = s.dnsNames.filter((name) => cert.checkHost(name) !== name);
  if (missing.length) return `the serving certificate does not name ${missing.join(', ')}`;
  const left = daysLeft(cert, s.now);
  if (left < s.renewBeforeDays)
    return `the serving certificate expires in ${Math.max(0, Math.floor(left))} days (renewed ${s.renewBeforeDays} days before)`;
  return undefined;
}

/**
 * What to do with the Secret found (undefined: there is none). A Secret `certs` did not make is refused,
 * never replaced or adopted; an unreadable CA is refused too, since replacing it silently would change
 * whom the API server trusts.
 */
export async function decide(
  existing: SecretLike | undefined,
  s: CertsSettings,
): Promise<SecretDecision> {
  const where = `Secret ${s.namespace}/${s.secret}`;
  if (!existing)
    return { action: 'create', data: await fresh(s), reason: `${where} did not exist` };
  if (!madeByCerts(existing)) {
    throw new LxcfsWebhookError(
      'E_CONFIG',
      `${where} exists and was not made by lxcfs-webhook certs (it has no label ` +
        `${CERTS_SECRET_LABEL.key}=${CERTS_SECRET_LABEL.value}); it is never taken over: delete it, or give --secret another name`,
    );
  }
  const data = existing.data ?? {};
  let ca: CertificateAuthority;
  try {
    ca = await loadCA(pem(data['ca.crt']), pem(data['ca.key']));
  } catch (err) {
    throw new LxcfsWebhookError(
      'E_TLS',
      `${where}: ${(err as Error).message.replace(/; remove ca\.crt.*$/, '')}; delete the Secret and run again: a new CA is made and put into the caBundle`,
      { cause: err },
    );
  }
  const caCert = new X509Certificate(ca.certPem);
  const caLeft = daysLeft(caCert, s.now);
  if (caLeft < s.renewBeforeDays) {
    return {
      action: 'renew-ca',
      data: await fresh(s),
      reason: `the CA expires in ${Math.max(0, Math.floor(caLeft))} days (renewed ${s.renewBeforeDays} days before)`,
    };
  }
  const problem = servingProblem(data, caCert, s);
  if (problem) return { action: 'renew-serving', data: await issue(ca, s), reason: problem };
  return {
    action: 'keep',
    data: data as unknown as CertsSecretData,
    reason: 'the serving certificate and CA are good',
  };
}

/** The certificates of a PEM bundle that can be read. */
function certificatesIn(bundle: string): X509Certificate[] {
  return [
    ...bundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g),
  ].flatMap((m) => {
    try {
      return [new X509Certificate(m[0])];
    } catch {
      return [];
    }
  });
}

/**
 * The caBundle (base64 PEM) every webhook should carry: our CA; and while the serving certificate is
 * younger than CA_BUNDLE_OVERLAP_MS, also the unexpired CAs the webhooks trust now, so replicas still
 * serving the previous certificate stay trusted during the switch.
 */
export function caBundleFor(data: CertsSecretData, currentBundles: string[], now: Date): string {
  const ours = new X509Certificate(pem(data['ca.crt']));
  const serving = new X509Certificate(pem(data['tls.crt']));
  const young = now.getTime() - Date.parse(serving.validFrom) < CA_BUNDLE_OVERLAP_MS;
  const keep = new Map<string, X509Certificate>([[ours.fingerprint256, ours]]);
  if (young) {
    for (const cert of currentBundles.flatMap((b) => certificatesIn(pem(b)))) {
      if (cert.ca && Date.parse(cert.validTo) > now.getTime()) keep.set(cert.fingerprint256, cert);
    }
  }
  return b64([...keep.values()].map((c) => c.toString().trim()).join('\n') + '\n');
}
