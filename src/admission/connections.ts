// The webhook port's connections below HTTP: who may hold them (connection-table.ts decides, this file
// applies it), each request's deadline, TLS handshakes that fail or never finish, requests the HTTP
// parser refuses, and closing every socket on shutdown. Every such socket is destroyed, never just
// ended: a client that never closes its side would otherwise keep a half-closed socket, its descriptor
// and its TLS buffers forever (found under attack: 10,000 silent clients took RSS from 78 to 632 MB).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { clip } from '../bounded.js';
import type { Logger } from '../log.js';
import {
  ConnectionTable,
  type ConnectionLimits,
  type ConnectionPhase,
} from './connection-table.js';
import type { WebhookMetrics } from './metrics.js';

/** On close, how long a just-accepted connection gets to deliver its first request (see closeServer). */
const FIRST_REQUEST_WINDOW_MS = 1_000;

/**
 * Closes an accepted TCP socket that https.Server has wrapped in TLS, TLS first. Before the handshake
 * ends Node gives no handle on the TLS socket, and destroying the TCP socket under a handshake in
 * progress crashed Node 20 (SIGSEGV, within a second of a 5,000-connection attack). The TLS socket
 * destroys itself, and then the TCP socket, in that order, when the TCP socket emits 'close': that event
 * is the one way to reach it.
 */
function closeUnderTls(raw: Socket): void {
  raw.emit('close', false);
}

/** Before its handshake a TLS socket has no protocol (null, or "unknown"): nothing can be answered on it. */
function completedHandshake(socket: Socket): boolean {
  if (!(socket instanceof TLSSocket)) return true;
  const protocol = socket.getProtocol();
  return protocol !== null && protocol !== 'unknown';
}

/**
 * What a client's bad request or handshake is worth logging, in the shape pino gives an error: its code
 * and clipped message. No stack (it is Node's parser, not our code) and none of the request's bytes
 * (the parser's error carries them as rawPacket).
 */
function clientFault(err: NodeJS.ErrnoException): { type: string; code?: string; message: string } {
  return { type: err.name, code: err.code, message: clip(err.message) };
}

/**
 * A request the HTTP parser refused, or one cut by the headers or request timeout: answered with a
 * status when the connection can still carry one, then destroyed once the answer is flushed.
 */
export function answerClientError(
  err: NodeJS.ErrnoException,
  socket: Socket,
  logger: Logger,
): void {
  logger.debug({ err: clientFault(err) }, 'malformed HTTP request');
  if (!completedHandshake(socket) || !socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? '408 Request Timeout'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () =>
    socket.destroy(),
  );
}

/**
 * With --client-ca, the handshake of a client that sent no certificate fails in OpenSSL with this; one
 * whose certificate does not chain to the CA completes in OpenSSL and is closed by Node, which leaves
 * the verification error on the socket (`authorizationError`) and reports a plain reset.
 */
const NO_CLIENT_CERTIFICATE = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';

/** A failed or timed-out TLS handshake. Node reports a handshake timeout here but leaves the socket open. */
export function endFailedHandshake(
  err: NodeJS.ErrnoException,
  socket: TLSSocket,
  logger: Logger,
  metrics: WebhookMetrics,
): void {
  socket.destroy();
  // Any pod can make us refuse it when --client-ca is set: counted, and logged only at debug so that it
  // cannot flood the log.
  // (authorizationError is null on every TLS socket until a client certificate fails verification.)
  const certificateError =
    err.code === NO_CLIENT_CERTIFICATE
      ? err.code
      : (socket as { authorizationError?: unknown }).authorizationError;
  if (certificateError !== undefined && certificateError !== null) {
    metrics.recordRefusedConnection('client-certificate');
    logger.debug(
      {
        err: clientFault(err),
        certificate: String(certificateError),
        peer: peerAddress(socket.remoteAddress),
      },
      'refused a client without a valid client certificate',
    );
    return;
  }
  // A client that resets during the handshake, or one that stays silent (scanners, TCP probes), says
  // nothing worth a warning; a refused certificate ("bad certificate", "unknown ca") usually means the
  // webhook configuration's caBundle is wrong.
  if (err.code === 'ECONNRESET' || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
    logger.debug({ err: clientFault(err) }, 'TLS handshake abandoned');
    return;
  }
  logger.warn({ err: clientFault(err) }, 'TLS handshake failed');
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is the peer 10.0.0.1. */
export function peerAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.')
    ? address.slice('::ffff:'.length)
    : address;
}

/**
 * The deadline of one request, from the API server's `?timeout=` (the webhook configuration's
 * timeoutSeconds, written as a Go duration: `10s`, `1.5s`, `500ms`): past it the API server has given up
 * and an answer helps no one. Missing, unreadable or longer than `maxMs`: `maxMs`.
 */
export function requestDeadlineMs(url: string | undefined, maxMs: number): number {
  const query = (url ?? '').split('?', 2)[1];
  if (query === undefined) return maxMs;
  const value = new URLSearchParams(query).get('timeout');
  if (value === null || !/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(value)) return maxMs;
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const [, amount, , unit] of value.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g))
    ms += Number(amount) * unitMs[unit!]!;
  return ms > 0 && ms < maxMs ? ms : maxMs;
}

export interface ConnectionGuardOptions {
  limits: ConnectionLimits;
  /** Longest a request may take, from its first line to the end of its answer; `?timeout=` shortens it. */
  requestTimeoutMs: number;
  metrics: WebhookMetrics;
  logger: Logger;
}

/** One accepted TCP connection, before and after its TLS handshake. */
interface Connection {
  raw: Socket;
  tls?: TLSSocket;
  /** Requests received (headers complete) and not yet answered, oldest first. */
  requests: Set<IncomingMessage>;
  /** Requests answered so far. */
  answered: number;
  /** Bytes arrived since the last answer with no request parsed yet: the next request is on its way. */
  receiving: boolean;
}

function phaseOf(connection: Connection): ConnectionPhase {
  if (connection.requests.size > 0) {
    for (const req of connection.requests) if (!req.complete) return 'unfinished';
    return 'answering';
  }
  return connection.answered === 0 || connection.receiving ? 'unfinished' : 'idle';
}

/**
 * Applies the connection table to `server`: every accepted connection is admitted (closing the ones
 * the table gives up for it) or refused, follows its phase, and each request gets a deadline.
 *
 * It also makes the HTTP parser read the TLS socket through 'data' events instead of consuming the TLS
 * handle directly: with the direct path, Node (20 and 24) pauses the parser while pipelined answers
 * queue, the TLS layer keeps delivering what it already decrypted, and the paused parser fails with
 * HPE_PAUSED, which cut a connection after one answer to 16 pipelined requests. With 'data' events the
 * same pause buffers the rest, so pipelined requests are all answered, in order, while Node's own
 * back-pressure (it stops reading once the queued answers pass the socket's high-water mark) keeps what
 * one connection can queue bounded.
 */
export function guardConnections(server: Server, options: ConnectionGuardOptions): void {
  const { metrics, logger } = options;
  const table = new ConnectionTable<Connection>(options.limits);
  const byTlsSocket = new WeakMap<Socket, Connection>();
  /** Connections in their handshake, by address and port: how the TLS socket finds its TCP socket. */
  const handshaking = new Map<string, Connection>();
  const keyOf = (socket: Socket) => `${socket.remoteAddress}|${socket.remotePort}`;

  const close = (connection: Connection) => {
    if (connection.tls) connection.tls.destroy();
    else closeUnderTls(connection.raw);
  };

  const follow = (connection: Connection) => {
    const phase = phaseOf(connection);
    // Only a change moves a connection in the table's order: a slow client stays as old as it is.
    if (table.phaseOf(connection) !== phase) table.setPhase(connection, phase);
  };

  server.on('connection', (raw: Socket) => {
    const peer = peerAddress(raw.remoteAddress);
    if (raw.remoteAddress === undefined) {
      closeUnderTls(raw); // gone before we got to it
      return;
    }
    const connection: Connection = { raw, requests: new Set(), answered: 0, receiving: false };
    const admission = table.admit(connection, peer);
    if (!admission.admitted) {
      metrics.recordRefusedConnection(admission.reason);
      logger.debug({ peer, reason: admission.reason }, 'connection refused');
      closeUnderTls(raw);
      return;
    }
    for (const { victim, reason, phase } of admission.evictions) {
      metrics.recordEvictedConnection(reason, phase);
      close(victim);
    }
    const key = keyOf(raw);
    handshaking.set(key, connection);
    raw.once('close', () => {
      table.remove(connection);
      if (handshaking.get(key) === connection) handshaking.delete(key);
    });
  });

  server.on('secureConnection', (tls: TLSSocket) => {
    const key = keyOf(tls);
    const connection = handshaking.get(key);
    if (!connection) return;
    handshaking.delete(key);
    connection.tls = tls;
    byTlsSocket.set(tls, connection);
    // Registered after Node's HTTP listener: adding a 'data' listener makes it read through events.
    tls.on('data', () => {
      if (connection.requests.size === 0 && !connection.receiving) {
        connection.receiving = true;
        follow(connection);
      }
    });
  });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const connection = byTlsSocket.get(req.socket);
    if (!connection) return;
    connection.requests.add(req);
    connection.receiving = false;
    follow(connection);
    req.once('end', () => follow(connection));
    const deadline = setTimeout(
      () => onDeadline(connection, req, res),
      requestDeadlineMs(req.url, options.requestTimeoutMs),
    );
    deadline.unref();
    res.once('close', () => {
      clearTimeout(deadline);
      connection.requests.delete(req);
      connection.answered++;
      follow(connection);
    });
  };
  server.on('request', onRequest);
  server.on('checkContinue', onRequest);

  /** The API server has given up on this request: the connection goes, with a 408 if nothing was sent. */
  const onDeadline = (connection: Connection, req: IncomingMessage, res: ServerResponse) => {
    const socket = connection.tls ?? connection.raw;
    const first = connection.requests.values().next().value === req;
    logger.debug(
      { peer: peerAddress(connection.raw.remoteAddress), complete: req.complete },
      'request deadline passed; closing its connection',
    );
    if (first && !req.complete && !res.headersSent) {
      answerClientError(
        Object.assign(new Error('request deadline passed'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
        socket,
        logger,
      );
    } else {
      socket.destroy();
    }
  };
}

/**
 * Every TCP connection of `server`, handshakes not yet done included: closeAllConnections() knows only
 * the HTTP ones, and a shutdown must not wait for a silent client's handshake timeout.
 */
export function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

/** Stops accepting, lets in-flight requests finish for up to `timeoutMs`, then cuts every socket left. */
export function closeServer(
  server: Server,
  sockets: ReadonlySet<Socket>,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => {
      server.closeAllConnections();
      for (const socket of sockets) closeUnderTls(socket);
    }, timeoutMs);
    // A connection accepted just before the port closed may not have sent its request yet: closing it
    // as idle now would fail a request already on its way. Every response says `Connection: close` by
    // now, so busy connections end themselves; what is still idle a moment later (keep-alive
    // connections unused since draining began) is idle for real.
    const idle = setTimeout(() => server.closeIdleConnections(), FIRST_REQUEST_WINDOW_MS);
    server.close(() => {
      clearTimeout(cut);
      clearTimeout(idle);
      resolve();
    });
  });
}

export function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  );
}
