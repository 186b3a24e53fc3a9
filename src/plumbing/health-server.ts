// The plain-HTTP health port every long-running component has: kubelet probes and Prometheus scrapes,
// off any TLS port so they need no certificate.
//   /livez   200 while the process can answer at all
//   /readyz  200 when there is no reason not to be ready, else 503 with one reason per line
//   /metrics Prometheus text format
import type { Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';

export interface HealthOptions {
  registry: Registry;
  /** Why the component is not ready; empty when it is. */
  notReadyReasons(): string[];
  logger: Logger;
}

// Through require(), not an ESM import: Node 22+ builds an ESM import's namespace from every export of
// node:http, which runs the lazy WebSocket/CloseEvent/MessageEvent getters and loads undici, ~13 MiB of
// resident memory the health port never uses (measured on Node 24; Node 20 has no such getters).
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

function send(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res
    .writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) })
    .end(body);
}

export function createHealthServer({ registry, notReadyReasons, logger }: HealthOptions): Server {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, `${req.method} is not supported here; use GET\n`);
    }
    switch (path) {
      case '/livez':
        return send(res, 200, 'ok\n');
      case '/readyz': {
        const reasons = notReadyReasons();
        return reasons.length === 0
          ? send(res, 200, 'ok\n')
          : send(res, 503, `${reasons.join('\n')}\n`);
      }
      case '/metrics':
        registry.metrics().then(
          (text) => send(res, 200, text, registry.contentType),
          (err: unknown) => {
            logger.error({ err }, 'metrics collection failed');
            send(res, 500, 'metrics collection failed\n');
          },
        );
        return;
      default:
        return send(res, 404, `no such path "${path}"; try /livez, /readyz or /metrics\n`);
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}
