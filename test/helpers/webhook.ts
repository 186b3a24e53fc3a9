// Test helpers for the webhook transport: start it in-process on free ports with a real certificate,
// capture its JSON log lines, and talk to it over real HTTPS (verifying the certificate).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type Agent } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { localhostCertificate } from '../../src/admission/self-signed.js';
import { startWebhook, type RunningWebhook, type WebhookConfig } from '../../src/admission/webhook.js';
import { defaultSettings } from '../../src/inject/settings.js';
import type { Logger } from '../../src/log.js';

export const HOST = '127.0.0.1';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger like the real one, writing parsed lines into `lines`. */
export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug', base: { component: 'webhook' }, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

export interface TestWebhook {
  webhook: RunningWebhook;
  lines: LogLine[];
  /** PEM of the CA the client trusts. */
  ca: string;
}

/** Starts the webhook on free loopback ports; the caller stops it. */
export async function startTestWebhook(overrides: Partial<WebhookConfig> = {}): Promise<TestWebhook> {
  const { logger, lines } = memoryLogger();
  const local = overrides.tls ? undefined : await localhostCertificate();
  const webhook = await startWebhook({
    port: 0,
    healthPort: 0,
    address: HOST,
    tls: { keyPair: local!.keyPair },
    settings: defaultSettings,
    maxRequestBytes: 8 * 1024 * 1024,
    logger,
    ...overrides,
  });
  return { webhook, lines, ca: local?.caCertPem ?? '' };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint256: string;
  reusedSocket: boolean;
}

export interface PostOptions {
  ca: string;
  path?: string;
  method?: string;
  contentType?: string | null;
  agent?: Agent;
  /** Sent as Content-Length unless `chunked`. */
  chunked?: boolean;
}

/** One HTTPS request; the body is JSON-encoded unless it is already a string or Buffer. */
export function send(port: number, body: unknown, options: PostOptions): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const headers: Record<string, string | number> = {};
  if (options.contentType !== null) headers['Content-Type'] = options.contentType ?? 'application/json';
  if (payload && !options.chunked) headers['Content-Length'] = payload.length;
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: HOST,
      port,
      path: options.path ?? '/mutate?timeout=10s',
      method: options.method ?? 'POST',
      headers,
      ca: options.ca,
      agent: options.agent ?? false,
    }, (res) => {
      const socket = res.socket as TLSSocket;
      const fingerprint256 = socket.getPeerCertificate().fingerprint256;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({
        status: res.statusCode!,
        headers: res.headers,
        text: Buffer.concat(chunks).toString('utf8'),
        fingerprint256,
        reusedSocket: req.reusedSocket,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** GET on the plain-HTTP health port. */
export function getHealth(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: HOST, port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

/** Value of one sample in Prometheus text, e.g. `metric('x_total{result="injected",reason=""}')`; 0 when absent. */
export function sampleValue(metricsText: string, sample: string): number {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** A TLS connection the test controls byte by byte, for keep-alive checks. */
export async function rawConnection(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port, ca, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes one HTTP/1.1 request on `socket` and reads one response (Content-Length framed). */
export function exchange(socket: TLSSocket, request: string): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = received.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (received.length < end + 4 + length) return;
      cleanup();
      resolve({ head, body: received.subarray(end + 4, end + 4 + length).toString('utf8') });
    };
    const onClose = () => {
      cleanup();
      reject(new Error('the server closed the connection before answering'));
    };
    const cleanup = () => {
      socket.removeListener('data', onData).removeListener('close', onClose).removeListener('error', onClose);
    };
    socket.on('data', onData).once('close', onClose).once('error', onClose);
    socket.write(request);
  });
}

export function postRequest(body: string, path = '/mutate'): string {
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
