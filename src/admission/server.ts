// The HTTPS transport of the webhook: turns `POST /mutate` requests into `reviewAdmission` calls and
// its results into responses. Everything about an AdmissionReview's content is in review.ts, request
// checks in request.ts, sockets below HTTP in connections.ts; this file maps results to HTTP.
//
// No request can take the process down: every handler is wrapped, client errors are answered by
// status code, and a failure of our own is a 500 (the API server then applies failurePolicy).
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { clip } from '../bounded.js';
import {
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  SOCKET_IDLE_TIMEOUT_MS,
  TIMEOUT_CHECK_INTERVAL_MS,
  TLS_HANDSHAKE_TIMEOUT_MS,
} from '../config/defaults.js';
import { RequestProblem } from '../errors.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Logger } from '../log.js';
import { BodyBudget } from './body-budget.js';
import {
  answerClientError,
  closeServer,
  endFailedHandshake,
  guardConnections,
  openConnections,
  peerAddress,
  trackSockets,
} from './connections.js';
import type { RequestOutcome, WebhookMetrics } from './metrics.js';
import { checkRequest, expectsContinue, pathOf, readBody } from './request.js';
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
const TLS_MIN_VERSION = 'TLSv1.2';

export interface AdmissionServerOptions {
  keyPair: KeyPair;
  settings: InjectionSettings;
  maxRequestBytes: number;
  /** Request bodies held at once, all connections together (see body-budget.ts). */
  maxRequestBytesInFlight: number;
  metrics: WebhookMetrics;
  logger: Logger;
  /** Connections held at once; a new one takes the place of an idle or unfinished one (connection-table.ts). */
  maxConnections: number;
  /** Connections one peer address may hold; beyond it a new one takes the place of one of its own. */
  maxConnectionsPerPeer: number;
  /** PEM CA bundle: when given, only clients with a certificate it signed complete the TLS handshake. */
  clientCa?: Buffer;
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

const roundMs = (ms: number): number => Math.round(ms * 100) / 100;

/** What every request handler needs: the server's settings and whether it is draining. */
interface Transport {
  settings: InjectionSettings;
  maxRequestBytes: number;
  bodyBudget: BodyBudget;
  metrics: WebhookMetrics;
  logger: Logger;
  draining: boolean;
}

/** One request being answered: the transport, the request and response, and when it arrived. */
interface Exchange {
  t: Transport;
  req: IncomingMessage;
  res: ServerResponse;
  started: number;
}

/** What to answer: the status, the JSON body, and how it is counted and logged. */
interface Reply {
  status: number;
  body: unknown;
  outcome: RequestOutcome;
  log?: ReviewLog;
  headers?: OutgoingHttpHeaders;
}

/** Writes one JSON response (unless the client is gone), records it, and returns its latency in seconds. */
function respond({ t, res, started }: Exchange, reply: Reply): number {
  const text = JSON.stringify(reply.body);
  if (!res.headersSent && !res.destroyed) {
    res
      .writeHead(reply.status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        ...reply.headers,
        ...(t.draining ? { Connection: 'close' } : {}),
      })
      .end(text);
  }
  const seconds = (performance.now() - started) / 1000;
  t.metrics.recordRequest(reply.outcome, seconds, reply.log);
  return seconds;
}

function reject(x: Exchange, problem: RequestProblem): void {
  const seconds = respond(x, {
    status: problem.status,
    body: { error: problem.message },
    outcome: { result: 'rejected', reason: problem.reason },
    headers: problem.headers,
  });
  x.t.logger.warn(
    {
      status: problem.status,
      reason: problem.reason,
      error: problem.message,
      method: x.req.method,
      path: clip(pathOf(x.req.url)),
      latencyMs: roundMs(seconds * 1000),
    },
    'rejected request',
  );
}

/** Decodes the body and answers with what review.ts decides; a body it cannot use is a 400. */
function answerReview(x: Exchange, body: Buffer): void {
  let decoded: unknown;
  try {
    decoded = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new RequestProblem(
      'malformed-json',
      `request body is not valid JSON (${clip((err as Error).message)}); send an AdmissionReview`,
    );
  }
  const result = reviewAdmission(decoded, x.t.settings);
  if (result.kind === 'invalid') throw new RequestProblem('invalid-review', result.problem);
  const outcome = { result: result.log.result, reason: result.log.reason ?? '' };
  const seconds = respond(x, { status: 200, body: result.review, outcome, log: result.log });
  // A review that hit a bug of ours is still answered (allowed unchanged), and logged as the error it is.
  const level = result.log.err === undefined ? 'info' : 'error';
  // `peer`: where reviews come from, which is what a NetworkPolicy must admit (README, "Network policy").
  const peer = peerAddress(x.res.socket?.remoteAddress);
  x.t.logger[level](
    { ...result.log, status: 200, latencyMs: roundMs(seconds * 1000), peer },
    'review',
  );
}

/** Whatever a handler throws becomes an answer: its own status for a RequestProblem, else a 500. */
function fail(x: Exchange, err: unknown): void {
  if (err instanceof RequestProblem) return reject(x, err);
  // A bug of ours: the whole error, stack included, goes to the log; only the request's path is clipped.
  x.t.logger.error({ err, method: x.req.method, path: clip(pathOf(x.req.url)) }, 'internal error');
  respond(x, {
    status: 500,
    body: { error: 'internal error; see the webhook log' },
    outcome: { result: 'error', reason: 'internal-error' },
  });
}

/** Runs `work`; whatever it throws becomes an answer, and if even that fails the connection is cut. */
function guarded(x: Exchange, work: () => void): void {
  try {
    work();
  } catch (err) {
    try {
      fail(x, err);
    } catch {
      x.res.destroy();
    }
  }
}

/** `Expect: 100-continue` (curl, for large bodies): the body is invited only once it will be read. */
function continueIfExpected(req: IncomingMessage, res: ServerResponse): void {
  if (expectsContinue(req)) res.writeContinue();
}

function handleRequest(t: Transport, req: IncomingMessage, res: ServerResponse): void {
  const x: Exchange = { t, req, res, started: performance.now() };
  guarded(x, () => {
    const problem = checkRequest(req, t.maxRequestBytes);
    if (problem) throw problem;
    const limits = {
      maxBytes: t.maxRequestBytes,
      budget: t.bodyBudget,
      onAdmitted: () => continueIfExpected(req, res),
    };
    readBody(req, limits, (body) =>
      guarded(x, () => {
        if (body instanceof RequestProblem) throw body;
        answerReview(x, body);
      }),
    );
  });
}

export function createAdmissionServer(options: AdmissionServerOptions): AdmissionServer {
  const bodyBudget = new BodyBudget(options.maxRequestBytesInFlight);
  const transport: Transport = { ...options, bodyBudget, draining: false };
  const handle = (req: IncomingMessage, res: ServerResponse) => handleRequest(transport, req, res);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const tlsOptions = {
    cert: options.keyPair.cert,
    key: options.keyPair.key,
    minVersion: TLS_MIN_VERSION,
    ca: options.clientCa,
  } as const;
  const server = createServer(
    {
      ...tlsOptions,
      ...(options.clientCa ? { requestCert: true, rejectUnauthorized: true } : {}),
      handshakeTimeout: timeouts.tlsHandshakeMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      connectionsCheckingInterval: timeouts.checkIntervalMs,
    },
    handle,
  );
  server.timeout = timeouts.socketIdleMs;
  options.metrics.countConnections(() => openConnections(server));
  options.metrics.countBodyBytes(() => bodyBudget.inUseBytes);
  const sockets = trackSockets(server);
  guardConnections(server, {
    limits: { maxConnections: options.maxConnections, maxPerPeer: options.maxConnectionsPerPeer },
    requestTimeoutMs: timeouts.requestMs,
    metrics: options.metrics,
    logger: options.logger,
  });
  // `Expect: 100-continue`: handled like any request; continueIfExpected invites the body once admitted.
  server.on('checkContinue', handle);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) =>
    answerClientError(err, socket, options.logger),
  );
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) =>
    endFailedHandshake(err, socket, options.logger, options.metrics),
  );

  return {
    server,
    useKeyPair: (pair) =>
      server.setSecureContext({ ...tlsOptions, cert: pair.cert, key: pair.key }),
    startDraining: () => {
      transport.draining = true;
    },
    close: (timeoutMs) => closeServer(server, sockets, timeoutMs),
  };
}
