// `lxcfs-webhook certs`: everything a cluster without cert-manager needs for the webhook's TLS, written
// to one directory the self-managed overlay reads: a CA, a serving certificate for the Service's DNS
// names (ECDSA P-256), the Secret holding it, and the caBundle patch for the webhook configuration.
//
// An existing CA in --out is reused, so running the command again rotates the serving certificate
// while the caBundle the API server trusts stays the same.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_SERVING_CERT_VALID_DAYS,
  INSTALL,
  MAX_CERT_VALID_DAYS,
} from '../config/defaults.js';
import {
  createCA,
  issueServingCert,
  loadCA,
  type CertificateAuthority,
} from '../certs/authority.js';
import { LxcfsWebhookError } from '../errors.js';
import type { Command } from './command.js';
import { FlagSet, helpText } from './flags.js';
import { integer, kubernetesName, path } from './values.js';

const days = integer(1, MAX_CERT_VALID_DAYS, 'days');

const flags = new FlagSet('certs', {
  out: { kind: path('DIR'), help: 'directory to write to, created if missing (required)' },
  namespace: {
    kind: kubernetesName,
    default: INSTALL.namespace,
    help: 'namespace of the webhook Service',
  },
  service: { kind: kubernetesName, default: INSTALL.service, help: 'name of the webhook Service' },
  'valid-days': {
    kind: days,
    default: DEFAULT_SERVING_CERT_VALID_DAYS,
    help: 'lifetime of the serving certificate',
  },
  'ca-valid-days': { kind: days, default: DEFAULT_CA_VALID_DAYS, help: 'lifetime of a new CA' },
});

const usage = helpText(flags, {
  synopsis: 'certs --out DIR [flags]',
  about: `Writes the webhook's TLS material for a cluster without cert-manager:
  DIR/ca.crt, DIR/ca.key        the CA (kept for the next rotation; ca.key never leaves DIR)
  DIR/tls.crt, DIR/tls.key      serving certificate for the Service's DNS names, signed by the CA
  DIR/secret.yaml               Secret ${INSTALL.tlsSecret} with tls.crt and tls.key
  DIR/cabundle-patch.yaml       patch setting caBundle on the MutatingWebhookConfiguration

Install: lxcfs-webhook certs --out deploy/overlays/self-managed/generated
         kubectl apply -k deploy/overlays/self-managed
Rotate:  run both again; the CA in DIR is reused and serve reloads the new Secret without a restart.`,
});

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

async function caIn(
  dir: string,
  validDays: number,
): Promise<{ ca: CertificateAuthority; reused: boolean }> {
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return {
      ca: await loadCA(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8')),
      reused: true,
    };
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
  summary: 'TLS for installs without cert-manager: CA, certificate, Secret, caBundle patch',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    if (values.out === undefined)
      throw flags.usageError(
        '--out is required: the directory to write the certificates, Secret and patch to',
      );
    return {
      out: values.out,
      namespace: values.namespace,
      service: values.service,
      validDays: values['valid-days'],
      caValidDays: values['ca-valid-days'],
    };
  },
  async run(options) {
    try {
      return await writeCertificates(options);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // fs errors (EACCES, ENOTDIR, ENOSPC...) are the user's to fix; anything else is ours.
      if (typeof code !== 'string' || !code.startsWith('E')) throw err;
      throw new LxcfsWebhookError(
        'E_FILE',
        `--out ${options.out}: ${(err as Error).message}; ` +
          'pick a directory this user can create, read and write',
        { cause: err },
      );
    }
  },
};

async function writeCertificates({
  out,
  namespace,
  service,
  validDays,
  caValidDays,
}: CertsOptions): Promise<number> {
  mkdirSync(out, { recursive: true });
  const { ca, reused } = await caIn(out, caValidDays);
  const serving = await issueServingCert(ca, serviceDnsNames(service, namespace), { validDays });
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: INSTALL.tlsSecret, namespace },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': Buffer.from(serving.certPem).toString('base64'),
      'tls.key': Buffer.from(serving.keyPem).toString('base64'),
    },
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
}
