// Test helpers for the webhook transport: start it in-process on free ports with a real certificate, or
// as a real `serve` process; capture its JSON log lines; talk to it over real HTTPS (verifying the
// certificate), alone or under a steady load; swap its certificate files the way kubelet does.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import type { EvictablePhase, LimitReason } from '../../src/admission/connection-table.js';
import type { KeyPairFiles } from '../../src/admission/tls.js';
import { localhostCertificate } from '../../src/admission/self-signed.js';
import {
  startWebhook,
  type RunningWebhook,
  type WebhookConfig,
} from '../../src/admission/webhook.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
  DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
  WEBHOOK_NODE_FLAGS,
} from '../../src/config/defaults.js';
import { defaultSettings } from '../../src/inject/settings.js';
import type { Logger } from '../../src/log.js';
import { cliPath, readJsonFixture, repoRoot } from './paths.js';
import { collectLogLines, type LogLine } from './log-lines.js';
import { waitUntil } from './wait.js';

export const HOST = '127.0.0.1';

/** A pino logger like the real one, writing parsed lines into `lines`. */
export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    {
      level: 'debug',
      base: { component: 'webhook' },
      formatters: { level: (label) => ({ level: label }) },
    },
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
export async function startTestWebhook(
  overrides: Partial<WebhookConfig> = {},
): Promise<TestWebhook> {
  const { logger, lines } = memoryLogger();
  const local = overrides.tls ? undefined : await localhostCertificate();
  const webhook = await startWebhook({
    port: 0,
    healthPort: 0,
    address: HOST,
    tls: overrides.tls ?? { keyPair: local!.keyPair },
    settings: defaultSettings,
    maxRequestBytes: 8 * 1024 * 1024,
    maxRequestBytesInFlight: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerPeer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
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
  const payload =
    body === undefined
      ? undefined
      : Buffer.isBuffer(body)
        ? body
        : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const headers: Record<string, string | number> = {};
  if (options.contentType !== null)
    headers['Content-Type'] = options.contentType ?? 'application/json';
  if (payload && !options.chunked) headers['Content-Length'] = payload.length;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: HOST,
        port,
        path: options.path ?? '/mutate?timeout=10s',
        method: options.method ?? 'POST',
        headers,
        ca: options.ca,
        agent: options.agent ?? false,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const fingerprint256 = socket.getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
            fingerprint256,
            reusedSocket: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      },
    );
    // Whether TLS was established before a failure: if not, the review never left the client.
    let secured = false;
    req.on('socket', (socket) => {
      if (req.reusedSocket) secured = true;
      else
        socket.once('secureConnect', () => {
          secured = true;
        });
    });
    req.on('error', (err: Error) => reject(Object.assign(err, { secured })));
    req.end(payload);
  });
}

/** GET on the plain-HTTP health port. */
export function getHealth(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: HOST, port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Value of one sample in Prometheus text, e.g. `metric('x_total{result="injected",reason=""}')`; 0 when absent. */
export function sampleValue(metricsText: string, sample: string): number {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** Connections the webhook closed to make room for a new one, from its metrics text. */
export function evictedConnections(
  metricsText: string,
  reason: LimitReason,
  phase: EvictablePhase,
): number {
  return sampleValue(
    metricsText,
    `lxcfs_webhook_connections_evicted_total{reason="${reason}",phase="${phase}"}`,
  );
}

/** New connections the webhook refused, from its metrics text. */
export function refusedConnections(
  metricsText: string,
  reason: LimitReason | 'client-certificate',
): number {
  return sampleValue(metricsText, `lxcfs_webhook_connections_refused_total{reason="${reason}"}`);
}

/** Where a raw connection comes from, and the client certificate it shows. */
export interface RawConnectionOptions {
  /** Source address, e.g. 127.0.0.2: the webhook sees each as another peer. */
  localAddress?: string;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** A TLS connection the test controls byte by byte, for keep-alive checks. */
export async function rawConnection(
  port: number,
  ca: string,
  options: RawConnectionOptions = {},
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port, ca, servername: 'localhost', ...options }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/**
 * The HTTP/1.1 response (Content-Length framed) that starts at `at` in the bytes received so far, and
 * where it ends; undefined while it is incomplete.
 */
export function readResponse(
  received: Buffer,
  at = 0,
): { head: string; body: string; end: number } | undefined {
  const headEnd = received.indexOf('\r\n\r\n', at);
  if (headEnd < 0) return undefined;
  const head = received.subarray(at, headEnd).toString('latin1');
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  const end = headEnd + 4 + length;
  if (received.length < end) return undefined;
  return { head, body: received.subarray(headEnd + 4, end).toString('utf8'), end };
}

/** Writes one HTTP/1.1 request on `socket` and reads one response (Content-Length framed). */
export function exchange(
  socket: TLSSocket,
  request: string,
): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const response = readResponse(received);
      if (!response) return;
      cleanup();
      resolve({ head: response.head, body: response.body });
    };
    const onClose = () => {
      cleanup();
      reject(new Error('the server closed the connection before answering'));
    };
    const cleanup = () => {
      socket
        .removeListener('data', onData)
        .removeListener('close', onClose)
        .removeListener('error', onClose);
    };
    socket.on('data', onData).once('close', onClose).once('error', onClose);
    socket.write(request);
  });
}

export function postRequest(body: string, path = '/mutate'): string {
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  healthPort: number;
  lines: LogLine[];
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the CLI (`lxcfs-webhook serve`) with the image's Node.js flags and waits for its "serving" log line,
 * which carries the bound ports.
 */
export async function startServe(args: string[]): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [...WEBHOOK_NODE_FLAGS, cliPath, 'serve', '--port', '0', '--health-port', '0', ...args],
    { cwd: repoRoot },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const lines: LogLine[] = [];
  const serving = new Promise<LogLine>((resolve, reject) => {
    collectLogLines(child.stdout!, lines, (line) => {
      if (line.msg === 'serving') resolve(line);
    });
    void exit.then(({ code }) =>
      reject(new Error(`serve exited (${code}) before serving: ${stderr}`)),
    );
  });
  const line = await serving;
  return {
    child,
    port: line.port as number,
    healthPort: line.healthPort as number,
    lines,
    stderr: () => stderr,
    exit,
  };
}

/** Writes `pair` into `dir` as tls.crt and tls.key, the file names of a kubernetes.io/tls Secret. */
export function writeKeyPairFiles(
  dir: string,
  pair: { certPem: string; keyPem: string },
): KeyPairFiles {
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  writeFileSync(files.certFile, pair.certPem);
  writeFileSync(files.keyFile, pair.keyPem, { mode: 0o600 });
  return files;
}

/**
 * `lxcfs-webhook serve` on 127.0.0.1 with the certificate and key in `files`, as a Deployment runs it,
 * checking the certificate for `localhost` and without a shutdown grace period (tests stop it at once)
 * unless `args` sets them.
 */
export function startServeOn(files: KeyPairFiles, args: string[] = []): Promise<ServeProcess> {
  const unlessGiven = (flag: string, value: string) => (args.includes(flag) ? [] : [flag, value]);
  return startServe([
    '--address',
    HOST,
    '--tls-cert',
    files.certFile,
    '--tls-key',
    files.keyFile,
    ...unlessGiven('--tls-server-name', 'localhost'),
    ...unlessGiven('--shutdown-grace', '0'),
    ...args,
  ]);
}

/** A Secret volume as kubelet writes it: files behind `..data`, a symlink swapped atomically on update. */
export class SecretVolume {
  private generation = 0;
  private current = '';
  constructor(readonly dir: string) {}

  get certFile() {
    return join(this.dir, 'tls.crt');
  }
  get keyFile() {
    return join(this.dir, 'tls.key');
  }

  write(pair: { certPem: string; keyPem: string }): void {
    const previous = this.current;
    this.current = `..2026_01_01_00_00_00.${++this.generation}`;
    mkdirSync(join(this.dir, this.current));
    writeFileSync(join(this.dir, this.current, 'tls.crt'), pair.certPem);
    writeFileSync(join(this.dir, this.current, 'tls.key'), pair.keyPem);
    symlinkSync(this.current, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (previous) {
      rmSync(join(this.dir, previous), { recursive: true });
    } else {
      symlinkSync('..data/tls.crt', this.certFile);
      symlinkSync('..data/tls.key', this.keyFile);
    }
  }
}

export interface LoadResult {
  succeeded: number;
  failures: string[];
  /**
   * Requests that failed before TLS was established, so before the review was sent: refused by a closed
   * port, or reset by the kernel when the listening socket closed with the connection still queued.
   */
  refused: number;
}

export interface LoadOptions {
  /** The AdmissionReview sent; the peer pod CREATE by default. */
  review?: () => unknown;
  /** Hard cap on requests, so a loop can never run away. */
  maxRequests?: number;
  /** Count connections that failed before TLS was established apart from failures (a server that stopped listening). */
  allowRefused?: boolean;
}

/**
 * Sends reviews without pause while `during` runs: two loops on keep-alive connections and one that
 * opens a new connection per request and records the certificate it was shown. Targets 127.0.0.1 only.
 */
export async function underLoad(
  port: number,
  ca: string,
  during: (seen: () => string, result: LoadResult) => Promise<void>,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const review =
    options.review ?? (() => readJsonFixture('peers', 'ymping-admissionreview-v1-pod-create.json'));
  const maxRequests = options.maxRequests ?? 50_000;
  const result: LoadResult = { succeeded: 0, failures: [], refused: 0 };
  let stop = false;
  let sent = 0;
  let lastSeen = '';
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const loop = async (fresh: boolean) => {
    while (!stop && sent++ < maxRequests) {
      try {
        const reply = await send(port, review(), { ca, ...(fresh ? {} : { agent }) });
        if (reply.status !== 200) throw new Error(`status ${reply.status}: ${reply.text}`);
        if (fresh) lastSeen = reply.fingerprint256;
        result.succeeded++;
      } catch (err) {
        if (options.allowRefused && !(err as { secured?: boolean }).secured) {
          result.refused++;
          await sleep(10);
        } else {
          result.failures.push(`${fresh ? 'new connection' : 'keep-alive'}: ${String(err)}`);
        }
      }
    }
  };
  const loops = [loop(false), loop(false), loop(true)];
  try {
    await waitUntil('first answers under load', () => result.succeeded >= 20 && lastSeen !== '');
    await during(() => lastSeen, result);
  } finally {
    stop = true;
    await Promise.all(loops);
    agent.destroy();
  }
  return result;
}
