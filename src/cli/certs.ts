// `lxcfs-webhook certs`: the webhook's TLS for a cluster without cert-manager, in one of two forms.
//
// --out DIR: everything the self-managed overlay reads, written to one directory: a CA, a serving
// certificate for the Service's DNS names (ECDSA P-256), the Secret holding it, and the caBundle patch
// for the webhook configuration. An existing CA in DIR is reused, so running the command again rotates
// the serving certificate while the caBundle the API server trusts stays the same.
//
// --secret NAME: the same, kept in the cluster by the Helm chart's Job and CronJob (mode self-signed):
// the Secret is made once, renewed before it expires, never taken over when something else made it;
// with --webhook-configuration, the CA goes into every webhook's caBundle.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  CERTS_SECRET_LABEL,
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_RENEW_BEFORE_DAYS,
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
import { caBundleFor, decide, type CertsSecretData, type SecretLike } from '../certs/secret.js';
import { LxcfsWebhookError } from '../errors.js';
import { KubeApiError, KubeClient } from '../kube/client.js';
import type { Command } from './command.js';
import { FlagSet, helpText } from './flags.js';
import { integer, kubernetesName, path } from './values.js';

const days = integer(1, MAX_CERT_VALID_DAYS, 'days');

const flags = new FlagSet('certs', {
  out: {
    kind: path('DIR'),
    help: 'directory to write to, created if missing (this or --secret is required)',
  },
  secret: {
    kind: kubernetesName,
    help: 'in a pod: keep the certificates in this Secret of --namespace instead (this or --out is required)',
  },
  namespace: {
    kind: kubernetesName,
    default: INSTALL.namespace,
    help: 'namespace of the webhook Service (and of --secret)',
  },
  service: { kind: kubernetesName, default: INSTALL.service, help: 'name of the webhook Service' },
  'valid-days': {
    kind: days,
    default: DEFAULT_SERVING_CERT_VALID_DAYS,
    help: 'lifetime of the serving certificate',
  },
  'ca-valid-days': { kind: days, default: DEFAULT_CA_VALID_DAYS, help: 'lifetime of a new CA' },
  'webhook-configuration': {
    kind: kubernetesName,
    help: 'with --secret: put the CA into the caBundle of every webhook of this MutatingWebhookConfiguration',
  },
  'renew-before-days': {
    kind: days,
    default: DEFAULT_RENEW_BEFORE_DAYS,
    help: 'with --secret: renew the serving certificate or the CA when fewer days are left',
  },
  'renew-only': {
    kind: 'switch',
    help: 'with --secret: never create the Secret (the renewal CronJob; the install Job creates it)',
  },
});

const usage = helpText(flags, {
  synopsis: 'certs (--out DIR | --secret NAME) [flags]',
  about: `TLS for the webhook on a cluster without cert-manager.

--out DIR writes:
  DIR/ca.crt, DIR/ca.key        the CA (kept for the next rotation; ca.key never leaves DIR)
  DIR/tls.crt, DIR/tls.key      serving certificate for the Service's DNS names, signed by the CA
  DIR/secret.yaml               Secret ${INSTALL.tlsSecret} with tls.crt and tls.key
  DIR/cabundle-patch.yaml       patch setting caBundle on the MutatingWebhookConfiguration
Install: lxcfs-webhook certs --out deploy/overlays/self-managed/generated
         kubectl apply -k deploy/overlays/self-managed
Rotate:  run both again; the CA in DIR is reused and serve reloads the new Secret without a restart.

--secret NAME (in a pod, with its service-account token: the Helm chart's certs Job and CronJob)
keeps the same in one Secret: made when missing, renewed --renew-before-days before the serving
certificate or the CA expires, refused when something else made it (no label
${CERTS_SECRET_LABEL.key}=${CERTS_SECRET_LABEL.value}).
With --webhook-configuration, every webhook's caBundle is set to the CA.`,
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

interface CommonOptions {
  namespace: string;
  service: string;
  validDays: number;
  caValidDays: number;
}

type CertsOptions =
  | (CommonOptions & { form: 'files'; out: string })
  | (CommonOptions & {
      form: 'secret';
      secret: string;
      webhookConfiguration?: string;
      renewBeforeDays: number;
      renewOnly: boolean;
    });

export const command: Command<CertsOptions> = {
  name: 'certs',
  summary: 'TLS for installs without cert-manager: CA, certificate, Secret, caBundle',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    const common = {
      namespace: values.namespace,
      service: values.service,
      validDays: values['valid-days'],
      caValidDays: values['ca-valid-days'],
    };
    if ((values.out === undefined) === (values.secret === undefined)) {
      throw flags.usageError(
        'give exactly one of --out DIR (write files) and --secret NAME (keep them in a Secret, from inside a pod)',
      );
    }
    if (values.out !== undefined) {
      for (const f of ['webhook-configuration', 'renew-only'] as const) {
        if (values[f]) throw flags.usageError(`--${f} goes with --secret, not --out`);
      }
      return { form: 'files', out: values.out, ...common };
    }
    if (values['renew-before-days'] >= values['valid-days']) {
      throw flags.usageError(
        `--renew-before-days (${values['renew-before-days']}) must be less than --valid-days (${values['valid-days']}), or every run renews`,
      );
    }
    return {
      form: 'secret',
      secret: values.secret!,
      ...common,
      renewBeforeDays: values['renew-before-days'],
      renewOnly: values['renew-only'],
      ...(values['webhook-configuration'] === undefined
        ? {}
        : { webhookConfiguration: values['webhook-configuration'] }),
    };
  },
  async run(options) {
    if (options.form === 'secret') return keepInSecret(options, KubeClient.inCluster());
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
}: CommonOptions & { out: string }): Promise<number> {
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

const say = (line: string) => process.stderr.write(`lxcfs-webhook certs: ${line}\n`);

/** --secret: make or renew the Secret, then (with --webhook-configuration) the caBundle. */
async function keepInSecret(
  o: Extract<CertsOptions, { form: 'secret' }>,
  kube: KubeClient,
): Promise<number> {
  const secretPath = `/api/v1/namespaces/${o.namespace}/secrets/${o.secret}`;
  const now = new Date();
  const existing = await kube.find<SecretLike>(secretPath);
  if (!existing && o.renewOnly) {
    throw new LxcfsWebhookError(
      'E_CONFIG',
      `Secret ${o.namespace}/${o.secret} does not exist and --renew-only never creates it: ` +
        'it is made at install and upgrade (helm upgrade makes it again)',
    );
  }
  const decision = await decide(existing, {
    secret: o.secret,
    namespace: o.namespace,
    dnsNames: serviceDnsNames(o.service, o.namespace),
    validDays: o.validDays,
    caValidDays: o.caValidDays,
    renewBeforeDays: o.renewBeforeDays,
    now,
  });
  if (decision.action === 'create') {
    await kube.create(`/api/v1/namespaces/${o.namespace}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: o.secret,
        namespace: o.namespace,
        labels: {
          [CERTS_SECRET_LABEL.key]: CERTS_SECRET_LABEL.value,
          'app.kubernetes.io/part-of': 'lxcfs-webhook',
        },
      },
      data: decision.data,
    });
  } else if (decision.action !== 'keep') {
    // resourceVersion: a concurrent writer makes this fail (409) instead of being overwritten.
    await kube.patch(
      secretPath,
      { metadata: { resourceVersion: existing!.metadata.resourceVersion }, data: decision.data },
      'application/merge-patch+json',
    );
  }
  const validTo = new Date(
    new X509Certificate(Buffer.from(decision.data['tls.crt'], 'base64')).validTo,
  ).toISOString();
  say(
    `Secret ${o.namespace}/${o.secret}: ${{ keep: 'kept', create: 'created', 'renew-serving': 'serving certificate renewed', 'renew-ca': 'CA and serving certificate renewed' }[decision.action]} ` +
      `(${decision.reason}); serving certificate valid until ${validTo}`,
  );
  if (o.webhookConfiguration) await setCaBundle(kube, o.webhookConfiguration, decision.data, now);
  return 0;
}

interface WebhookConfiguration {
  metadata: { resourceVersion?: string };
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

async function setCaBundle(
  kube: KubeClient,
  name: string,
  data: CertsSecretData,
  now: Date,
): Promise<void> {
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`;
  // A conflict (another writer between our read and our patch) is read again once.
  for (let attempt = 1; ; attempt++) {
    const config = await kube.find<WebhookConfiguration>(path);
    if (!config) {
      say(
        `MutatingWebhookConfiguration ${name} does not exist yet: its caBundle is set by the run after it is created`,
      );
      return;
    }
    const webhooks = config.webhooks ?? [];
    const bundle = caBundleFor(
      data,
      webhooks.map((w) => w.clientConfig?.caBundle ?? ''),
      now,
    );
    // Each webhook is named in a test: a list changed since our read fails the whole patch.
    const ops = webhooks.flatMap((w, i) =>
      w.clientConfig?.caBundle === bundle
        ? []
        : [
            { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
            { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle },
          ],
    );
    if (ops.length === 0) {
      say(`MutatingWebhookConfiguration ${name}: every webhook's caBundle is already the CA`);
      return;
    }
    try {
      await kube.patch(path, ops, 'application/json-patch+json');
      say(
        `MutatingWebhookConfiguration ${name}: caBundle set on ${ops.length / 2} of ${webhooks.length} webhooks`,
      );
      return;
    } catch (err) {
      if (attempt >= 2 || !(err instanceof KubeApiError) || ![409, 422].includes(err.status))
        throw err;
    }
  }
}
