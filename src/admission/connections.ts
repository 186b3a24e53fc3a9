// The webhook port's connections below HTTP: TLS handshakes that fail or never finish, requests the
// HTTP parser refuses, and closing every socket on shutdown. Every such socket is destroyed, never just
// ended: a client that never closes its side would otherwise keep a half-closed socket, its descriptor
// and its TLS buffers forever (found under attack: 10,000 silent clients took RSS from 78 to 632 MB).
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { clip } from '../bounded.js';
import type { Logger } from '../log.js';

/** On close, how long a just-accepted connection gets to deliver its first request (see closeServer). */
const FIRST_REQUEST_WINDOW_MS = 1_000;

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

/** A failed or timed-out TLS handshake. Node reports a handshake timeout here but leaves the socket open. */
export function endFailedHandshake(
  err: NodeJS.ErrnoException,
  socket: TLSSocket,
  logger: Logger,
): void {
  socket.destroy();
  // A client that resets during the handshake, or one that stays silent (scanners, TCP probes), says
  // nothing worth a warning; a refused certificate ("bad certificate", "unknown ca") usually means the
  // webhook configuration's caBundle is wrong.
  if (err.code === 'ECONNRESET' || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
    logger.debug({ err: clientFault(err) }, 'TLS handshake abandoned');
    return;
  }
  logger.warn({ err: clientFault(err) }, 'TLS handshake failed');
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
      for (const socket of sockets) socket.destroy();
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
