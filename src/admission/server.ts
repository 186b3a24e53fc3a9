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
import { MUTATE_PATH } from '../config/defaults.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Logger } from '../log.js';
import type { RequestOutcome, WebhookMetrics } from './metrics.js';
import { reviewAdmission, type ReviewLog } from './review.js';
import type { KeyPair } from './tls.js';

/** The API server keeps idle connections to webhooks for 90 s; closing them sooner races its reuse. */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;
/**
 * These two only run while a request is being received (Node >= 18 does not count the idle time
 * between keep-alive requests), so they can be far below the keep-alive timeout. 30 s is the longest
 * timeoutSeconds a webhook configuration may have: after that the API server has given up anyway.
 */
const HEADERS_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * A connection silent before its first request, or stalled mid-request. Node's headers timeout does
 * not cover a connection that never sends a byte, and a socket timeout above the headers timeout
 * never fires on one (seen on Node 20 and 24), so keep it at the headers timeout.
 */
const SOCKET_IDLE_TIMEOUT_MS = HEADERS_TIMEOUT_MS;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
const TLS_MIN_VERSION = 'TLSv1.2';

export interface AdmissionServerOptions {
  keyPair: KeyPair;
  settings: InjectionSettings;
  maxRequestBytes: number;
  metrics: WebhookMetrics;
  logger: Logger;
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
    return new RequestProblem(404, 'not-found', `no such path "${path}"; AdmissionReviews go to POST ${MUTATE_PATH}`);
  }
  if (req.method !== 'POST') {
    return new RequestProblem(405, 'method-not-allowed', `${req.method} is not supported; send AdmissionReviews with POST`, { Allow: 'POST' });
  }
  const contentType = req.headers['content-type'];
  if (!isJsonContentType(contentType)) {
    return new RequestProblem(415, 'unsupported-media-type',
      `Content-Type must be application/json (UTF-8), not ${contentType === undefined ? 'missing' : `"${contentType}"`}`);
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
    logger.warn({ status: problem.status, reason: problem.reason, error: problem.message, method: req.method, path: pathOf(req.url), latencyMs: roundMs(seconds * 1000) }, 'rejected request');
  }

  function review(res: ServerResponse, started: number, body: Buffer): void {
    let decoded: unknown;
    try {
      decoded = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new RequestProblem(400, 'malformed-json', `request body is not valid JSON (${(err as Error).message}); send an AdmissionReview`);
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
    logger.error({ err: String(err), method: req.method, path: pathOf(req.url) }, 'internal error');
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

  const tlsOptions = { cert: options.keyPair.cert, key: options.keyPair.key, minVersion: TLS_MIN_VERSION } as const;
  const server = createServer({
    ...tlsOptions,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
  }, handle);
  server.timeout = SOCKET_IDLE_TIMEOUT_MS;
  // `Expect: 100-continue` (curl, for large bodies): invite the body only if it will be read.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!checkRequest(req, maxRequestBytes)) res.writeContinue();
    handle(req, res);
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ err: err.code ?? err.message }, 'malformed HTTP request');
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
      : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    // A client that resets during the handshake says nothing; a refused certificate ("bad
    // certificate", "unknown ca") usually means the webhook configuration's caBundle is wrong.
    if (err.code === 'ECONNRESET') return;
    logger.warn({ err: err.code ?? err.message, detail: err.message }, 'TLS handshake failed');
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
        const cut = setTimeout(() => server.closeAllConnections(), timeoutMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
