// Runs a hook Job's (or Pod's) container on this machine as a kubelet would run it in a pod, so that the
// model's hooks execute the real program with the real arguments: the image's ENTRYPOINT (read from
// images/webhook.Dockerfile) with the container's command/args, as user 65532 when the pod asks for
// non-root, on a read-only root filesystem, in a private mount namespace where the pod's service-account
// token, ca.crt and namespace sit at /var/run/secrets/kubernetes.io/serviceaccount (when the pod mounts
// a token at all), and with KUBERNETES_SERVICE_HOST/PORT naming the cluster model's HTTPS front.
// A Pod (a `helm test` hook) reaches the webhook's Service: the runner starts the real `serve` with the
// Deployment's arguments and the certificate of the Secret it mounts, and routes the Service's DNS name
// and port to it, as kube-proxy and cluster DNS would.
// Needs root (unshare, mount), as the node tests do.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import { cliPath, repoRoot } from '../helpers/paths.js';
import { startServe, type ServeProcess } from '../helpers/webhook.js';
import { serveApi, type ApiFront, type K8sObject } from './cluster.js';
import type { Helm, JobRunner } from './helm.js';

const POD_ROOT = join(repoRoot, 'test', 'helm', 'pod-root.sh');

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
  /** One HTTPS front per cluster model this runner has run pods against. */
  private readonly fronts = new Map<object, Promise<ApiFront>>();
  /** Every container run, in order: a test can check what ran, as whom, with which arguments. */
  readonly runs: PodRun[] = [];

  constructor(private readonly timeoutMs = 60_000) {}

  private api(helm: Helm): Promise<ApiFront> {
    let front = this.fronts.get(helm.cluster);
    if (!front) {
      front = (async () => {
        const ca = await createCA({ commonName: 'model cluster CA', validDays: 1 });
        const serving = await issueServingCert(ca, ['127.0.0.1', 'kubernetes.default.svc'], {
          validDays: 1,
        });
        return serveApi(helm.cluster, {
          certPem: serving.certPem,
          keyPem: serving.keyPem,
          caPem: ca.certPem,
        });
      })();
      this.fronts.set(helm.cluster, front);
    }
    return front;
  }

  private startService(helm: Helm, namespace: string): Promise<RunningService | undefined> {
    return startWebhookService(helm, namespace);
  }

  async close(): Promise<void> {
    for (const front of this.fronts.values()) await (await front).close();
    this.fronts.clear();
  }

  async run(
    object: K8sObject,
    helm: Helm,
  ): Promise<{ succeeded: boolean; reason: string; logs: string }> {
    const namespace = object.metadata.namespace!;
    const spec = object.kind === 'Job' ? object.spec.template.spec : object.spec;
    const saName: string = spec.serviceAccountName ?? 'default';
    const sa = helm.cluster.tryGet({ kind: 'ServiceAccount', namespace, name: saName });
    // The ServiceAccount admission plugin refuses the pod; the Job never gets one and Helm's wait times out.
    if (!sa)
      return {
        succeeded: false,
        reason: 'timed out waiting for the condition',
        logs: `pods "${object.metadata.name}-" is forbidden: error looking up service account ${namespace}/${saName}: serviceaccount "${saName}" not found`,
      };
    if (spec.containers.length !== 1 || (spec.initContainers ?? []).length > 0)
      throw new Error(`${object.kind} ${object.metadata.name}: the runner runs one container`);
    const container = spec.containers[0];
    if (!isWebhookImage(container.image))
      throw new Error(
        `${object.kind} ${object.metadata.name}: image ${container.image} is not one this runner can run`,
      );
    const entrypoint = webhookEntrypoint();
    const argv: string[] = container.command
      ? [...container.command, ...(container.args ?? [])]
      : [...entrypoint, ...(container.args ?? [])];
    const local = argv.map((a, i) =>
      i === 0 || a.startsWith('/') ? (IMAGE_PATHS[a]?.() ?? a) : a,
    );
    if (!IMAGE_PATHS[argv[0]!])
      throw new Error(
        `${object.kind} ${object.metadata.name}: ${argv[0]} is not in the webhook image`,
      );

    const automount = spec.automountServiceAccountToken ?? sa.automountServiceAccountToken ?? true;
    const front = await this.api(helm);
    const saDir = mkdtempSync(join(tmpdir(), 'model-sa-'));
    chmodSync(saDir, 0o755);
    if (automount) {
      writeFileSync(join(saDir, 'token'), helm.cluster.tokenFor(namespace, saName), {
        mode: 0o644,
      });
      writeFileSync(join(saDir, 'ca.crt'), front.caPem, { mode: 0o644 });
      writeFileSync(join(saDir, 'namespace'), namespace, { mode: 0o644 });
    }
    const podSecurity = spec.securityContext ?? {};
    const containerSecurity = container.securityContext ?? {};
    const runAsUser = containerSecurity.runAsUser ?? podSecurity.runAsUser;
    const nonRoot = containerSecurity.runAsNonRoot ?? podSecurity.runAsNonRoot;
    if (nonRoot && runAsUser === undefined)
      throw new Error(
        `${object.kind} ${object.metadata.name}: runAsNonRoot without runAsUser: the image's USER decides (65532 in the webhook image)`,
      );
    const uid = runAsUser ?? 65532;
    const readOnlyRoot = containerSecurity.readOnlyRootFilesystem === true;
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: `${object.metadata.name}-model`,
      KUBERNETES_SERVICE_HOST: front.host,
      KUBERNETES_SERVICE_PORT: String(front.port),
    };
    for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;

    const backoffLimit = object.kind === 'Job' ? Math.min(object.spec.backoffLimit ?? 6, 2) : 0;
    let logs = '';
    const service = object.kind === 'Pod' ? await this.startService(helm, namespace) : undefined;
    if (service) {
      env.NODE_OPTIONS = `--import=${service.preload}`;
      // The Pod's Secret volume: the runner mounts the items it names, as the kubelet does.
      const volume = spec.volumes?.find((v: any) => v.secret);
      const secret =
        volume &&
        helm.cluster.tryGet({ kind: 'Secret', namespace, name: volume.secret.secretName });
      const mount = container.volumeMounts?.find((m: any) => m.name === volume?.name);
      if (mount && (secret || !volume.secret.optional)) {
        if (!secret)
          return {
            succeeded: false,
            reason: 'timed out waiting for the condition',
            logs: `MountVolume.SetUp failed: secret "${volume.secret.secretName}" not found`,
          };
        mkdirSync(join(service.dir, 'volume'), { mode: 0o755 });
        for (const item of volume.secret.items ??
          Object.keys(secret.data ?? {}).map((key) => ({ key, path: key }))) {
          if (secret.data?.[item.key] !== undefined)
            writeFileSync(
              join(service.dir, 'volume', item.path),
              Buffer.from(secret.data[item.key], 'base64'),
              { mode: 0o644 },
            );
        }
        service.mounts.push(`${join(service.dir, 'volume')}:${mount.mountPath}`);
      }
    }
    try {
      for (let attempt = 0; attempt <= backoffLimit; attempt++) {
        const run = await new Promise<PodRun>((resolve) => {
          const child = spawn(
            'unshare',
            ['--mount', '--propagation', 'private', 'sh', POD_ROOT, ...local],
            {
              // The pod's environment and nothing of this process's; pod-root.sh drops its own MODEL_* settings.
              env: {
                ...env,
                MODEL_MOUNTS: (service?.mounts ?? []).join(' '),
                MODEL_NODE: process.execPath,
                MODEL_SA_DIR: saDir,
                MODEL_AUTOMOUNT: automount ? '1' : '0',
                MODEL_READ_ONLY: readOnlyRoot ? '1' : '0',
                MODEL_UID: String(uid),
              },
              stdio: ['ignore', 'pipe', 'pipe'],
              timeout: (object.spec.activeDeadlineSeconds ?? this.timeoutMs / 1000) * 1000,
            },
          );
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
      if (service) await service.stop();
    }
    return {
      succeeded: false,
      reason: object.kind === 'Job' ? 'BackoffLimitExceeded' : 'pod failed',
      logs,
    };
  }
}

interface RunningService {
  dir: string;
  preload: string;
  mounts: string[];
  stop(): Promise<void>;
}

const SERVE_FLAGS_REPLACED = /^--(port|health-port|tls-cert|tls-key)(=|$)/;

/** The webhook behind its Service: `serve` as the Deployment runs it, reachable under the Service's name. */
async function startWebhookService(
  helm: Helm,
  namespace: string,
): Promise<RunningService | undefined> {
  const deployment = helm.cluster.tryGet({ kind: 'Deployment', namespace, name: 'lxcfs-webhook' });
  const service = helm.cluster.tryGet({ kind: 'Service', namespace, name: 'lxcfs-webhook' });
  const dir = mkdtempSync(join(tmpdir(), 'model-svc-'));
  chmodSync(dir, 0o755);
  let serve: ServeProcess | undefined;
  if (deployment && service) {
    const pod = deployment.spec.template.spec;
    const volume = pod.volumes.find((v: any) => v.name === 'tls');
    const secret = helm.cluster.tryGet({
      kind: 'Secret',
      namespace,
      name: volume.secret.secretName,
    });
    if (secret) {
      mkdirSync(join(dir, 'tls'));
      for (const key of ['tls.crt', 'tls.key'])
        writeFileSync(join(dir, 'tls', key), Buffer.from(secret.data[key], 'base64'));
      const args: string[] = pod.containers[0].args
        .slice(1)
        .filter((a: string) => !SERVE_FLAGS_REPLACED.test(a));
      serve = await startServe([
        ...args,
        '--tls-cert',
        join(dir, 'tls', 'tls.crt'),
        '--tls-key',
        join(dir, 'tls', 'tls.key'),
      ]);
    }
  }
  // Cluster DNS and kube-proxy: <service>.<namespace>.svc:443 is the serve process (or refuses, with none).
  const target = serve ? serve.port : 1;
  const preload = join(dir, 'service-routes.mjs');
  writeFileSync(
    preload,
    [
      "import tls from 'node:tls';",
      'const connect = tls.connect;',
      `const host = ${JSON.stringify(`lxcfs-webhook.${namespace}.svc`)};`,
      'tls.connect = function (...args) {',
      "  const o = args.find((a) => a && typeof a === 'object');",
      `  if (o && o.host === host && Number(o.port) === 443) { o.servername ??= host; o.host = '127.0.0.1'; o.port = ${target}; }`,
      '  return connect.apply(this, args);',
      '};',
    ].join('\n'),
    { mode: 0o644 },
  );
  return {
    dir,
    preload,
    mounts: [],
    stop: async () => {
      if (serve) {
        serve.child.kill('SIGKILL');
        await serve.exit;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
