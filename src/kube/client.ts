// The few Kubernetes API calls an in-cluster command makes (`certs --secret`), over HTTPS with the pod's
// service-account token, verified with the cluster CA the kubelet mounts next to it: the way every
// in-cluster client finds the API server (KUBERNETES_SERVICE_HOST/PORT). No client library: get,
// create and patch of one object by path are all that is needed.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { KUBE_API_TIMEOUT_MS, SERVICE_ACCOUNT_DIR } from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import { clip } from '../bounded.js';

/** A failed call: the API server's status code, its Status reason (NotFound, Forbidden, ...) and message. */
export class KubeApiError extends LxcfsWebhookError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super('E_KUBE', message);
  }
}

export type PatchType = 'application/merge-patch+json' | 'application/json-patch+json';

export class KubeClient {
  private constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly token: string,
    private readonly ca: Buffer,
  ) {}

  /** The client a pod has: the API server from the environment, token and CA from the service-account directory. */
  static inCluster(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeClient {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = Number(env.KUBERNETES_SERVICE_PORT ?? '443');
    if (!host) {
      throw new LxcfsWebhookError(
        'E_KUBE',
        "KUBERNETES_SERVICE_HOST is not set: this command calls the Kubernetes API from inside a pod (the chart's certs Job); outside a cluster use certs --out DIR",
      );
    }
    let token: string;
    let ca: Buffer;
    try {
      token = readFileSync(join(dir, 'token'), 'utf8').trim();
      ca = readFileSync(join(dir, 'ca.crt'));
    } catch (err) {
      throw new LxcfsWebhookError(
        'E_KUBE',
        `no service-account token in ${dir} (${(err as Error).message}): give the pod one (automountServiceAccountToken: true)`,
        { cause: err },
      );
    }
    return new KubeClient(host, port, token, ca);
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  /** GET, or undefined when the object does not exist. */
  async find<T = unknown>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  create<T = unknown>(path: string, body: object): Promise<T> {
    return this.call<T>('POST', path, JSON.stringify(body), 'application/json');
  }

  patch<T = unknown>(path: string, body: object, type: PatchType): Promise<T> {
    return this.call<T>('PATCH', path, JSON.stringify(body), type);
  }

  private call<T>(method: string, path: string, body?: string, contentType?: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          ca: this.ca,
          minVersion: 'TLSv1.2',
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: 'application/json',
            ...(body === undefined
              ? {}
              : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) }),
          },
          timeout: KUBE_API_TIMEOUT_MS,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(parsed as T);
            const apiStatus = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
              reason?: unknown;
              message?: unknown;
            };
            const reason =
              typeof apiStatus.reason === 'string' ? apiStatus.reason : `HTTP ${status}`;
            const message =
              typeof apiStatus.message === 'string' ? apiStatus.message : clip(text, 300);
            reject(
              new KubeApiError(
                status,
                reason,
                `${method} ${path}: ${status} ${reason}: ${message}`,
              ),
            );
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`no answer within ${KUBE_API_TIMEOUT_MS / 1000} s`)),
      );
      req.on('error', (err) =>
        reject(
          new LxcfsWebhookError(
            'E_KUBE',
            `${method} ${path}: the API server at ${this.host}:${this.port} could not be reached: ${err.message}`,
            { cause: err },
          ),
        ),
      );
      req.end(body);
    });
  }
}
