// The agent's HTTP port: /livez (the event loop answers), /readyz (lxcfs answers, the anchor binds are
// live, the first sweep is done; otherwise 503 with the reasons), /metrics (Prometheus).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Why the agent is not ready; empty when it is. */
export type ReadinessCheck = () => string[];

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(port: number, notReadyReasons: ReadinessCheck, registry: Registry): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const reasons = notReadyReasons();
      res.writeHead(reasons.length === 0 ? 200 : 503, { 'content-type': 'text/plain' }).end(reasons.length === 0 ? 'ok\n' : `${reasons.join('\n')}\n`);
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
