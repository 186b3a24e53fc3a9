// Runs a hook Job's (or Pod's) container on this machine as a kubelet would run it in a pod, so that the
// model's hooks execute the real program with the real arguments: the image's ENTRYPOINT (read from
// images/webhook.Dockerfile) with the container's command/args, as user 65532 when the pod asks for
// non-root, on a read-only root filesystem, in a private mount namespace where the pod's service-account
// token, ca.crt and namespace sit at /var/run/secrets/kubernetes.io/serviceaccount (when the pod mounts
// a token at all), and with KUBERNETES_SERVICE_HOST/PORT naming the cluster model's HTTPS front.
// Needs root (unshare, mount), as the node tests do.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import { cliPath, repoRoot } from '../helpers/paths.js';
import { serveApi, type ApiFront, type K8sObject } from './cluster.js';
import type { Helm, JobRunner } from './helm.js';

/** The webhook image's ENTRYPOINT, from its Dockerfile (exec form). */
function webhookEntrypoint(): string[] {
  const text = readFileSync(join(repoRoot, 'images', 'webhook.Dockerfile'), 'utf8');
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(text);
  if (!m) throw new Error('images/webhook.Dockerfile has no exec-form ENTRYPOINT');
  return JSON.parse(m[1]!) as string[];
}

/** Paths inside the webhook image and what stands for them here. */
const IMAGE_PATHS: Record<string, () => string> = {
  '/nodejs/bin/node': () => '/run/node',
  '/app/dist/src/cli/main.js': () => cliPath,
  '/usr/local/bin/lxcfs-webhook': () => cliPath,
};

export interface PodRun {
  code: number | null;
  logs: string;
  argv: string[];
  user: string;
}

/** Images this runner can run: the chart's webhook image (any registry, tag or digest). */
export function isWebhookImage(image: string): boolean {
  return /(^|\/)webhook(:[^/@]+)?(@sha256:[a-f0-9]{64})?$/.test(image);
}

export class LocalPodRunner implements JobRunner {
  private front: Promise<ApiFront> | undefined;
  /** Every container run, in order: a test can check what ran, as whom, with which arguments. */
  readonly runs: PodRun[] = [];

  constructor(private readonly timeoutMs = 60_000) {}

  private api(helm: Helm): Promise<ApiFront> {
    this.front ??= (async () => {
      const ca = await createCA({ commonName: 'model cluster CA', validDays: 1 });
      const serving = await issueServingCert(ca, ['127.0.0.1', 'kubernetes.default.svc'], { validDays: 1 });
      return serveApi(helm.cluster, { certPem: serving.certPem, keyPem: serving.keyPem, caPem: ca.certPem });
    })();
    return this.front;
  }

  async close(): Promise<void> {
    if (this.front) await (await this.front).close();
  }

  async run(object: K8sObject, helm: Helm): Promise<{ succeeded: boolean; reason: string; logs: string }> {
    const namespace = object.metadata.namespace!;
    const spec = object.kind === 'Job' ? object.spec.template.spec : object.spec;
    const saName: string = spec.serviceAccountName ?? 'default';
    const sa = helm.cluster.tryGet({ kind: 'ServiceAccount', namespace, name: saName });
    // The ServiceAccount admission plugin refuses the pod; the Job never gets one and Helm's wait times out.
    if (!sa) return { succeeded: false, reason: 'timed out waiting for the condition', logs: `pods "${object.metadata.name}-" is forbidden: error looking up service account ${namespace}/${saName}: serviceaccount "${saName}" not found` };
    if (spec.containers.length !== 1 || (spec.initContainers ?? []).length > 0) throw new Error(`${object.kind} ${object.metadata.name}: the runner runs one container`);
    const container = spec.containers[0];
    if (!isWebhookImage(container.image)) throw new Error(`${object.kind} ${object.metadata.name}: image ${container.image} is not one this runner can run`);
    const entrypoint = webhookEntrypoint();
    const argv: string[] = container.command ? [...container.command, ...(container.args ?? [])] : [...entrypoint, ...(container.args ?? [])];
    const local = argv.map((a, i) => (i === 0 || a.startsWith('/') ? (IMAGE_PATHS[a]?.() ?? a) : a));
    if (!IMAGE_PATHS[argv[0]!]) throw new Error(`${object.kind} ${object.metadata.name}: ${argv[0]} is not in the webhook image`);

    const automount = spec.automountServiceAccountToken ?? sa.automountServiceAccountToken ?? true;
    const front = await this.api(helm);
    const saDir = mkdtempSync(join(tmpdir(), 'model-sa-'));
    chmodSync(saDir, 0o755);
    if (automount) {
      writeFileSync(join(saDir, 'token'), helm.cluster.tokenFor(namespace, saName), { mode: 0o644 });
      writeFileSync(join(saDir, 'ca.crt'), front.caPem, { mode: 0o644 });
      writeFileSync(join(saDir, 'namespace'), namespace, { mode: 0o644 });
    }
    const podSecurity = spec.securityContext ?? {};
    const containerSecurity = container.securityContext ?? {};
    const runAsUser = containerSecurity.runAsUser ?? podSecurity.runAsUser;
    const nonRoot = containerSecurity.runAsNonRoot ?? podSecurity.runAsNonRoot;
    if (nonRoot && runAsUser === undefined) throw new Error(`${object.kind} ${object.metadata.name}: runAsNonRoot without runAsUser: the image's USER decides (65532 in the webhook image)`);
    const uid = runAsUser ?? 65532;
    const readOnlyRoot = containerSecurity.readOnlyRootFilesystem === true;
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: `${object.metadata.name}-model`,
      KUBERNETES_SERVICE_HOST: front.host,
      KUBERNETES_SERVICE_PORT: String(front.port),
    };
    for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;

    // Inside a private mount namespace: the token directory at its path, then (if asked) the whole
    // root read-only, then drop to the pod's user.
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=755 tmpfs /run',
      'mkdir -p /run/secrets/kubernetes.io/serviceaccount',
      'if [ "$MODEL_AUTOMOUNT" = 1 ]; then mount --bind "$MODEL_SA_DIR" /run/secrets/kubernetes.io/serviceaccount; fi',
      // node may live where the pod's user cannot reach it (npx's cache under /root): its file, bound here, can be.
      'touch /run/node && mount --bind "$MODEL_NODE" /run/node',
      // Only this namespace's copy of the root mount becomes read-only.
      'if [ "$MODEL_READ_ONLY" = 1 ]; then mount -o remount,bind,ro /; fi',
      `exec setpriv --reuid="$MODEL_UID" --regid="$MODEL_UID" --clear-groups --inh-caps=-all -- /usr/bin/env -i ${Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')} "$@"`,
    ].join('\n');
    const backoffLimit = object.kind === 'Job' ? Math.min(object.spec.backoffLimit ?? 6, 2) : 0;
    let logs = '';
    try {
      for (let attempt = 0; attempt <= backoffLimit; attempt++) {
        const run = await new Promise<PodRun>((resolve) => {
          const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'pod', ...local], {
            env: { MODEL_NODE: process.execPath, MODEL_SA_DIR: saDir, MODEL_AUTOMOUNT: automount ? '1' : '0', MODEL_READ_ONLY: readOnlyRoot ? '1' : '0', MODEL_UID: String(uid), PATH: process.env.PATH ?? '' },
            stdio: ['ignore', 'pipe', 'pipe'],
            timeout: (object.spec.activeDeadlineSeconds ?? this.timeoutMs / 1000) * 1000,
          });
          let out = '';
          child.stdout.on('data', (c: Buffer) => (out += c.toString()));
          child.stderr.on('data', (c: Buffer) => (out += c.toString()));
          child.on('close', (code) => resolve({ code, logs: out, argv, user: String(uid) }));
        });
        this.runs.push(run);
        logs += run.logs;
        if (run.code === 0) return { succeeded: true, reason: '', logs };
        if (object.spec.template?.spec?.restartPolicy === 'Never' && object.kind === 'Pod') break;
      }
    } finally {
      rmSync(saDir, { recursive: true, force: true });
    }
    return { succeeded: false, reason: object.kind === 'Job' ? 'BackoffLimitExceeded' : 'pod failed', logs };
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
