// What the harness calls besides `serve`: another injector's webhook that adds a sidecar (for
// reinvocation), and a proxy that holds back every reply (a webhook slower than timeoutSeconds). All on
// 127.0.0.1, stopped by the caller.
import { createServer as createTcpServer, connect, type Server, type Socket } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import type { K8sObject } from '../deploy/render.js';
import { HOST, startServeOn, writeKeyPairFiles, type ServeProcess } from '../helpers/webhook.js';
import { serverNameOf } from './install-forms.js';

/**
 * `lxcfs-webhook serve` as a real process, serving with the given certificate on a free loopback port,
 * checking it, as the install's Deployment has it, for the name the API server will check: that of the
 * Service `configuration` calls.
 */
export async function serveWith(
  serving: { certPem: string; keyPem: string },
  configuration: K8sObject,
  args: string[] = [],
): Promise<ServeProcess & { stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'harness-serve-'));
  const serve = await startServeOn(writeKeyPairFiles(dir, serving), [
    '--tls-server-name',
    serverNameOf(configuration),
    ...args,
  ]);
  const stop = async () => {
    serve.child.kill('SIGTERM');
    await serve.exit;
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...serve, stop };
}

export interface SidecarInjector {
  port: number;
  caBundle: string;
  /** Its MutatingWebhookConfiguration: named to sort after ours, so the API server calls it after ours. */
  configuration: object;
  close: () => Promise<void>;
}

export const SIDECAR = {
  name: 'mesh-proxy',
  image: 'registry.example/mesh-proxy:1.0',
  resources: { limits: { cpu: '100m', memory: '64Mi' } },
};

/**
 * Another vendor's webhook (a service mesh's, say) that appends a sidecar container to every pod it has
 * not seen, with `reinvocationPolicy: Never`: our `IfNeeded` entry must be called again to give it lxcfs.
 */
export async function startSidecarInjector(): Promise<SidecarInjector> {
  const ca = await createCA({ commonName: 'mesh-ca', validDays: 1 });
  const serving = await issueServingCert(ca, ['mesh-injector.mesh-system.svc'], { validDays: 1 });
  const server = createHttpsServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as {
        apiVersion: string;
        request: { uid: string; object: { spec: { containers: Array<{ name: string }> } } };
      };
      const has = review.request.object.spec.containers.some((c) => c.name === SIDECAR.name);
      const patch = has
        ? undefined
        : Buffer.from(
            JSON.stringify([{ op: 'add', path: '/spec/containers/-', value: SIDECAR }]),
          ).toString('base64');
      res.setHeader('Content-Type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: review.apiVersion,
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: true,
            ...(patch ? { patchType: 'JSONPatch', patch } : {}),
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as { port: number }).port;
  const caBundle = Buffer.from(ca.certPem).toString('base64');
  const configuration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'mesh-sidecar-injector' },
    webhooks: [
      {
        name: 'sidecar.mesh.example',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        reinvocationPolicy: 'Never',
        matchPolicy: 'Equivalent',
        clientConfig: {
          service: { namespace: 'mesh-system', name: 'mesh-injector', path: '/inject', port: 443 },
          caBundle,
        },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: { matchLabels: { 'mesh-injection': 'enabled' } },
        // As the API server stores it: it defaults a missing selector to {} (everything).
        objectSelector: {},
      },
    ],
  };
  return {
    port,
    caBundle,
    configuration,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A TCP proxy in front of `upstream` that delays everything the upstream sends by `delayMs`. */
export async function slowProxy(
  upstreamPort: number,
  delayMs: number,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createTcpServer((client) => {
    const upstream = connect(upstreamPort, HOST);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) =>
      setTimeout(() => {
        if (!client.destroyed) client.write(chunk);
      }, delayMs).unref(),
    );
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
