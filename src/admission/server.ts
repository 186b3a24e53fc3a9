// The HTTPS transport of the webhook: turns `POST /mutate` requests into `reviewAdmission` calls and
// its answers into responses. Everything about an AdmissionReview's content is in review.ts; this file
// only deals with HTTP: paths, methods, content type, body size, timeouts, TLS and shutdown.
//
// No request can take the process down: every handler is wrapped, client errors are answered by
// status code, and a failure of our own is a 500 (the API server then applies failurePolicy).
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import {
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  MUTATE_PATH,
  REQUEST_TIMEOUT_MS,
  SOCKET_IDLE_TIMEOUT_MS,
  TIMEOUT_CHECK_INTERVAL_MS,
  TLS_HANDSHAKE_TIMEOUT_MS,
} from '../config/defaults.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Logger } from '../log.js';
import { clip } from '../bounded.js';
import type { RequestOutcome, WebhookMetrics } from './metrics.js';
import { reviewAdmission, type ReviewLog } from './review.js';
import type { KeyPair } from './tls.js';

/**
 * Timeouts of the transport; the defaults (and why they are what they are) are in config/defaults.ts.
 * Tests shorten them so a hostile client is cut in a second instead of ten.
 */
export interface TransportTimeouts {
  tlsHandshakeMs: number;
  headersMs: number;
  requestMs: number;
  keepAliveMs: number;
  socketIdleMs: number;
  checkIntervalMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<TransportTimeouts> = {
  tlsHandshakeMs: TLS_HANDSHAKE_TIMEOUT_MS,
  headersMs: HEADERS_TIMEOUT_MS,
  requestMs: REQUEST_TIMEOUT_MS,
  keepAliveMs: KEEP_ALIVE_TIMEOUT_MS,
  socketIdleMs: SOCKET_IDLE_TIMEOUT_MS,
  checkIntervalMs: TIMEOUT_CHECK_INTERVAL_MS,
};
/** On close, how long a just-accepted connection gets to deliver its first request (see close()). */
const FIRST_REQUEST_WINDOW_MS = 1_000;
const TLS_MIN_VERSION = 'TLSv1.2';

export interface AdmissionServerOptions {
  keyPair: KeyPair;
  settings: InjectionSettings;
  maxRequestBytes: number;
  metrics: WebhookMetrics;
  logger: Logger;
  /** Connections held at once; more are refused at accept and counted as dropped. */
  maxConnections: number;
  timeouts?: Partial<TransportTimeouts>;
}

export interface AdmissionServer {
  server: Server;
  /** New TLS handshakes use `pair`; established connections keep theirs. */
  useKeyPair(pair: KeyPair): void;
  /** From now on every response says `Connection: close`, so clients move to other replicas. */
  startDraining(): void;
  /** Stops accepting, lets in-flight requests finish for up to `timeoutMs`, then cuts what is left. */
  close(timeoutMs: number): Promise<void>;
}

/** `application/json`, optionally with `charset=utf-8` (JSON is UTF-8; nothing else is accepted). */
function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [mediaType = '', ...params] = header.split(';');
  if (mediaType.trim().toLowerCase() !== 'application/json') return false;
  return params.every((param) => {
    const [name = '', value = ''] = param.split('=');
    return name.trim().toLowerCase() !== 'charset' || value.trim().replace(/"/g, '').toLowerCase() === 'utf-8';
  });
}

const pathOf = (url: string | undefined): string => (url ?? '/').split('?', 1)[0]!;

class RequestProblem {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly message: string,
    readonly headers: OutgoingHttpHeaders = {},
  ) {}
}

/** Checks everything about a request that can be known before its body is read. */
function checkRequest(req: IncomingMessage, maxRequestBytes: number): RequestProblem | undefined {
  const path = pathOf(req.url);
  if (path !== MUTATE_PATH) {
    return new RequestProblem(404, 'not-found', `no such path "${clip(path)}"; AdmissionReviews go to POST ${MUTATE_PATH}`);
  }
  if (req.method !== 'POST') {
    return new RequestProblem(405, 'method-not-allowed', `${clip(String(req.method))} is not supported; send AdmissionReviews with POST`, { Allow: 'POST' });
  }
  const contentType = req.headers['content-type'];
  if (!isJsonContentType(contentType)) {
    return new RequestProblem(415, 'unsupported-media-type',
      `Content-Type must be application/json (UTF-8), not ${contentType === undefined ? 'missing' : `"${clip(contentType)}"`}`);
  }
  const declared = Number(req.headers['content-length']);
  if (declared > maxRequestBytes) return tooLarge(maxRequestBytes);
  return undefined;
}

/** Closes the connection too: the rest of the body is not read, so the connection cannot be reused. */
function tooLarge(maxRequestBytes: number): RequestProblem {
  return new RequestProblem(413, 'payload-too-large',
    `request body is larger than ${maxRequestBytes} bytes; raise --max-request-bytes if real reviews are this large`,
    { Connection: 'close' });
}

/**
 * Reads the body up to `limit` bytes; beyond it, stops collecting and reports a 413 at once. `done`
 * is called once at most: a client that aborts after its answer is not answered twice.
 */
function readBody(req: IncomingMessage, limit: number, done: (body: Buffer | RequestProblem) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const settle = (result: Buffer | RequestProblem) => {
    if (settled) return;
    settled = true;
    req.removeListener('data', onData);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) return settle(tooLarge(limit));
    chunks.push(chunk);
  };
  req.on('data', onData);
  req.on('end', () => settle(Buffer.concat(chunks, size)));
  req.on('error', () => settle(new RequestProblem(400, 'aborted', 'the client closed the connection before the body was complete')));
}

const roundMs = (ms: number): number => Math.round(ms * 100) / 100;

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
}

/** Before its handshake a TLS socket has no protocol (null, or "unknown"): nothing can be answered on it. */
function completedHandshake(socket: Socket): boolean {
  if (!(socket instanceof TLSSocket)) return true;
  const protocol = socket.getProtocol();
  return protocol !== null && protocol !== 'unknown';
}

/**
 * A request the HTTP parser refused, or one cut by the headers or request timeout: answered with a
 * status when the connection can still carry one, then closed for good. The socket is destroyed once
 * the answer is flushed, not just ended: a client that never closes its side would otherwise keep a
 * half-closed socket (and its descriptor) open.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  logger.debug({ err: err.code ?? err.message }, 'malformed HTTP request');
  if (!completedHandshake(socket) || !socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
    : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
    : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

export function createAdmissionServer(options: AdmissionServerOptions): AdmissionServer {
  const { settings, maxRequestBytes, metrics, logger } = options;
  let draining = false;

  function respond(
    res: ServerResponse,
    started: number,
    status: number,
    body: unknown,
    outcome: RequestOutcome,
    log?: ReviewLog,
    headers: OutgoingHttpHeaders = {},
  ): number {
    const text = JSON.stringify(body);
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        ...headers,
        ...(draining ? { Connection: 'close' } : {}),
      }).end(text);
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.recordRequest(outcome, seconds, log);
    return seconds;
  }

  function reject(req: IncomingMessage, res: ServerResponse, started: number, problem: RequestProblem): void {
    const seconds = respond(res, started, problem.status, { error: problem.message }, { result: 'rejected', reason: problem.reason }, undefined, problem.headers);
    logger.warn({ status: problem.status, reason: problem.reason, error: problem.message, method: req.method, path: clip(pathOf(req.url)), latencyMs: roundMs(seconds * 1000) }, 'rejected request');
  }

  function review(res: ServerResponse, started: number, body: Buffer): void {
    let decoded: unknown;
    try {
      decoded = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new RequestProblem(400, 'malformed-json', `request body is not valid JSON (${clip((err as Error).message)}); send an AdmissionReview`);
    }
    const answer = reviewAdmission(decoded, settings);
    if (answer.status !== 200) {
      throw new RequestProblem(answer.status, 'invalid-review', answer.log.error ?? 'not an AdmissionReview');
    }
    const seconds = respond(res, started, 200, answer.body, { result: answer.log.result, reason: answer.log.reason ?? '' }, answer.log);
    logger.info({ ...answer.log, status: 200, latencyMs: roundMs(seconds * 1000) }, 'review');
  }

  function fail(req: IncomingMessage, res: ServerResponse, started: number, err: unknown): void {
    if (err instanceof RequestProblem) return reject(req, res, started, err);
    logger.error({ err: clip(String(err)), method: req.method, path: clip(pathOf(req.url)) }, 'internal error');
    respond(res, started, 500, { error: 'internal error; see the webhook log' }, { result: 'error', reason: 'internal-error' });
  }

  /** Runs `work`; whatever it throws becomes an answer, and if even that fails the connection is cut. */
  function guarded(req: IncomingMessage, res: ServerResponse, started: number, work: () => void): void {
    try {
      work();
    } catch (err) {
      try {
        fail(req, res, started, err);
      } catch {
        res.destroy();
      }
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    guarded(req, res, started, () => {
      const problem = checkRequest(req, maxRequestBytes);
      if (problem) throw problem;
      readBody(req, maxRequestBytes, (body) => guarded(req, res, started, () => {
        if (body instanceof RequestProblem) throw body;
        review(res, started, body);
      }));
    });
  }

  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const tlsOptions = { cert: options.keyPair.cert, key: options.keyPair.key, minVersion: TLS_MIN_VERSION } as const;
  const server = createServer({
    ...tlsOptions,
    handshakeTimeout: timeouts.tlsHandshakeMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: timeouts.checkIntervalMs,
  }, handle);
  server.timeout = timeouts.socketIdleMs;
  server.maxConnections = options.maxConnections;
  metrics.countConnections(() => openConnections(server));
  // Every TCP connection, TLS handshake not yet done included: closeAllConnections() knows only the
  // HTTP ones, and a shutdown must not wait for a silent client's handshake timeout.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Node >= 18.6 emits 'drop' for a connection refused at maxConnections (it closes it itself).
  server.on('drop', () => metrics.recordDroppedConnection());
  // `Expect: 100-continue` (curl, for large bodies): invite the body only if it will be read.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!checkRequest(req, maxRequestBytes)) res.writeContinue();
    handle(req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, logger));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // Node reports a handshake timeout (ERR_TLS_HANDSHAKE_TIMEOUT) here but leaves the socket open:
    // without this, every silent or half-handshaken client leaks a descriptor and its buffers forever.
    socket.destroy();
    // A client that resets during the handshake, or one that stays silent (scanners, TCP probes),
    // says nothing worth a warning; a refused certificate ("bad certificate", "unknown ca") usually
    // means the webhook configuration's caBundle is wrong.
    if (err.code === 'ECONNRESET' || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
      logger.debug({ err: err.code }, 'TLS handshake abandoned');
      return;
    }
    logger.warn({ err: err.code ?? err.message, detail: clip(err.message) }, 'TLS handshake failed');
  });

  return {
    server,
    useKeyPair(pair) {
      server.setSecureContext({ ...tlsOptions, cert: pair.cert, key: pair.key });
    },
    startDraining() {
      draining = true;
    },
    close(timeoutMs) {
      return new Promise((resolve) => {
        const cut = setTimeout(() => {
          server.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, timeoutMs);
        // A connection accepted just before the port closed may not have sent its request yet: closing
        // it as idle now would fail a request already on its way. Every response says
        // `Connection: close` by now, so busy connections end themselves; what is still idle a moment
        // later (keep-alive connections unused since draining began) is idle for real.
        const idle = setTimeout(() => server.closeIdleConnections(), FIRST_REQUEST_WINDOW_MS);
        server.close(() => {
          clearTimeout(cut);
          clearTimeout(idle);
          resolve();
        });
      });
    },
  };
}
