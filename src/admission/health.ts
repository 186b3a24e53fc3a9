// The plain-HTTP health port of `serve`: kubelet probes and Prometheus scrapes, kept off the TLS port
// so they need no certificate and never count as reviews.
//   /livez   200 while the process can answer at all
//   /readyz  200 while serving, 503 once shutdown began (the Service stops sending us reviews)
//   /metrics Prometheus text format
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';

export interface HealthOptions {
  registry: Registry;
  isReady(): boolean;
  logger: Logger;
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }).end(body);
}

export function createHealthServer({ registry, isReady, logger }: HealthOptions): Server {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, `${req.method} is not supported here; use GET\n`);
    }
    switch (path) {
      case '/livez':
        return send(res, 200, 'ok\n');
      case '/readyz':
        return isReady() ? send(res, 200, 'ok\n') : send(res, 503, 'shutting down\n');
      case '/metrics':
        registry.metrics().then(
          (text) => send(res, 200, text, registry.contentType),
          (err: unknown) => {
            logger.error({ err: String(err) }, 'metrics collection failed');
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
