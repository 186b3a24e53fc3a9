// `lxcfs-webhook certs`: everything a cluster without cert-manager needs for the webhook's TLS, written
// to one directory the self-managed overlay reads: a CA, a serving certificate for the Service's DNS
// names (ECDSA P-256), the Secret holding it, and the caBundle patch for the webhook configuration.
//
// An existing CA in --out is reused, so running the command again rotates the serving certificate
// while the caBundle the API server trusts stays the same.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { INSTALL } from '../config/defaults.js';
import { createCA, issueServingCert, loadCA, type CertificateAuthority } from '../certs/authority.js';
import { configError } from '../errors.js';
import type { Command } from './command.js';
import { parseFlags } from './flags.js';

const usage = `usage: lxcfs-webhook certs --out DIR [flags]

Writes the webhook's TLS material for a cluster without cert-manager:
  DIR/ca.crt, DIR/ca.key        the CA (kept for the next rotation; ca.key never leaves DIR)
  DIR/tls.crt, DIR/tls.key      serving certificate for the Service's DNS names, signed by the CA
  DIR/secret.yaml               Secret ${INSTALL.tlsSecret} with tls.crt and tls.key
  DIR/cabundle-patch.yaml       patch setting caBundle on the MutatingWebhookConfiguration

Install: lxcfs-webhook certs --out deploy/overlays/self-managed/generated
         kubectl apply -k deploy/overlays/self-managed
Rotate:  run both again; the CA in DIR is reused and serve reloads the new Secret without a restart.

flags:
  --out DIR             directory to write to (created if missing)
  --namespace NS        namespace of the webhook Service (default ${INSTALL.namespace})
  --service NAME        name of the webhook Service (default ${INSTALL.service})
  --valid-days N        lifetime of the serving certificate (default 365)
  --ca-valid-days N     lifetime of a new CA (default 3650)`;

/** Kubernetes names: RFC 1123 labels. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function positiveDays(flag: string, value: string): number {
  const days = Number(value);
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw configError(`--${flag} has value "${value}"; expected a whole number of days from 1 to 36500`);
  return days;
}

function dnsLabel(flag: string, value: string): string {
  if (!DNS_LABEL.test(value)) throw configError(`--${flag} has value "${value}"; expected a Kubernetes name (lower-case letters, digits and "-", at most 63)`);
  return value;
}

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

async function caIn(dir: string, validDays: number): Promise<{ ca: CertificateAuthority; reused: boolean }> {
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { ca: await loadCA(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8')), reused: true };
  }
  return { ca: await createCA({ commonName: `${INSTALL.service}-ca`, validDays }), reused: false };
}

interface CertsOptions {
  out: string;
  namespace: string;
  service: string;
  validDays: number;
  caValidDays: number;
}

export const command: Command<CertsOptions> = {
  name: 'certs',
  summary: 'write a CA, serving certificate, Secret and caBundle patch for installs without cert-manager',
  usage,
  parse(args) {
    const { values } = parseFlags('certs', {
      args,
      options: {
        'out': { type: 'string' },
        'namespace': { type: 'string', default: INSTALL.namespace },
        'service': { type: 'string', default: INSTALL.service },
        'valid-days': { type: 'string', default: '365' },
        'ca-valid-days': { type: 'string', default: '3650' },
      },
    });
    if (!values.out) throw configError('--out is required: the directory to write the certificates, Secret and patch to');
    return {
      out: values.out,
      namespace: dnsLabel('namespace', values.namespace),
      service: dnsLabel('service', values.service),
      validDays: positiveDays('valid-days', values['valid-days']),
      caValidDays: positiveDays('ca-valid-days', values['ca-valid-days']),
    };
  },
  async run({ out, namespace, service, validDays, caValidDays }) {
    mkdirSync(out, { recursive: true });
    const { ca, reused } = await caIn(out, caValidDays);
    const serving = await issueServingCert(ca, serviceDnsNames(service, namespace), { validDays });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: INSTALL.tlsSecret, namespace },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(serving.certPem).toString('base64'), 'tls.key': Buffer.from(serving.keyPem).toString('base64') },
    };
    const caBundle = Buffer.from(ca.certPem).toString('base64');
    const patch = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: INSTALL.webhookConfiguration },
      webhooks: INSTALL.webhooks.map((name) => ({ name, clientConfig: { caBundle } })),
    };

    writeFileSync(join(out, 'ca.crt'), ca.certPem);
    writeFileSync(join(out, 'ca.key'), ca.keyPem, { mode: 0o600 });
    writeFileSync(join(out, 'tls.crt'), serving.certPem);
    writeFileSync(join(out, 'tls.key'), serving.keyPem, { mode: 0o600 });
    writeFileSync(join(out, 'secret.yaml'), stringify(secret), { mode: 0o600 });
    writeFileSync(join(out, 'cabundle-patch.yaml'), stringify(patch));
    process.stderr.write(
      `lxcfs-webhook certs: ${reused ? 'reused the CA in' : 'created a new CA in'} ${out}; ` +
      `serving certificate for ${serviceDnsNames(service, namespace).join(', ')}, valid ${validDays} days\n`,
    );
    return 0;
  },
};
