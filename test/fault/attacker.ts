// A hostile in-cluster client of the webhook, run as a process of its own by webhook-attack.test.ts (so
// its thousands of sockets count against its own descriptor limit, raised by the test). It holds
// `connections` connections to the webhook in one of five ways, spread over several source addresses
// (127.0.0.x: other pods), and opens a new one as soon as the server closes one, as a real attacker would.
//
//   node attacker.js '{"port":8443,"ca":"/path/ca.pem","mode":"slow-headers","connections":1000,"addresses":["127.0.0.2"]}'
//
// It prints `{"open":N,"opened":N,"answers":N}` once a second and stops (closing everything) on SIGTERM.
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';

export type AttackMode = 'keep-alive' | 'idle-tls' | 'slow-headers' | 'slow-body' | 'reconnect';

export interface AttackPlan {
  port: number;
  /** PEM file of the CA that signed the webhook's certificate. */
  ca: string;
  mode: AttackMode;
  connections: number;
  addresses: string[];
  /** An AdmissionReview (JSON file) for the modes that send one. */
  review: string;
}

const plan = JSON.parse(process.argv[2] ?? '{}') as AttackPlan;
const ca = readFileSync(plan.ca);
const body = readFileSync(plan.review);
const head = `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
const request = Buffer.concat([Buffer.from(head), body]);
/** How often a slow client sends its next byte: well inside the server's idle timeout. */
const DRIBBLE_MS = 1_000;
/** How often a keep-alive client sends a review: now and then. */
const REVIEW_EVERY_MS = [1_000, 4_000] as const;

let stopping = false;
let open = 0;
let opened = 0;
let answers = 0;
const sockets = new Set<TLSSocket>();

/** Counts complete answers (status lines) in what the server sends. */
function countAnswers(socket: TLSSocket, onAnswer: () => void): void {
  socket.on('data', (chunk: Buffer) => {
    let at = chunk.indexOf('HTTP/1.1 ');
    while (at >= 0) {
      answers++;
      onAnswer();
      at = chunk.indexOf('HTTP/1.1 ', at + 9);
    }
  });
}

/** One attacking slot: a connection, its behaviour, and a new connection whenever it closes. */
function slot(index: number): void {
  if (stopping) return;
  const tcp = tcpConnect({
    host: '127.0.0.1',
    port: plan.port,
    localAddress: plan.addresses[index % plan.addresses.length],
  });
  const socket = connect({ socket: tcp, ca, servername: 'localhost' });
  sockets.add(socket);
  opened++;
  const timers: NodeJS.Timeout[] = [];
  let secured = false;
  socket.on('error', () => undefined);
  tcp.on('error', () => undefined);
  socket.once('close', () => {
    sockets.delete(socket);
    for (const timer of timers) clearTimeout(timer);
    if (secured) open--;
    // A new connection at once: the slot never gives up. (A short pause when the port refuses outright.)
    if (!stopping) setTimeout(() => slot(index), secured ? 0 : 50);
  });
  socket.once('secureConnect', () => {
    secured = true;
    open++;
    switch (plan.mode) {
      case 'idle-tls':
        return;
      case 'keep-alive': {
        const next = () =>
          timers.push(
            setTimeout(
              () => socket.write(request),
              REVIEW_EVERY_MS[0] + Math.random() * (REVIEW_EVERY_MS[1] - REVIEW_EVERY_MS[0]),
            ),
          );
        countAnswers(socket, next);
        socket.write(request);
        return;
      }
      case 'reconnect':
        countAnswers(socket, () => socket.end());
        socket.write(request);
        return;
      case 'slow-headers':
        // A header that never ends: one byte at a time.
        return dribble(
          socket,
          timers,
          Buffer.concat([
            Buffer.from('POST /mutate HTTP/1.1\r\nHost: localhost\r\nX-Slow: '),
            Buffer.alloc(1 << 20, 'a'),
          ]),
          40,
        );
      case 'slow-body':
        return dribble(socket, timers, request, head.length);
    }
  });
}

/** Writes `bytes`, the first `first` at once and then one every DRIBBLE_MS. */
function dribble(socket: TLSSocket, timers: NodeJS.Timeout[], bytes: Buffer, first: number): void {
  socket.write(bytes.subarray(0, first));
  let next = first;
  const tick = () => {
    if (socket.destroyed || next >= bytes.length) return;
    socket.write(bytes.subarray(next, ++next));
    timers[0] = setTimeout(tick, DRIBBLE_MS);
  };
  timers[0] = setTimeout(tick, DRIBBLE_MS);
}

// Started in batches so the listen backlog is not the only thing being measured.
const BATCH = 250;
for (let start = 0; start < plan.connections; start += BATCH) {
  setTimeout(
    () => {
      for (let i = start; i < Math.min(start + BATCH, plan.connections); i++) slot(i);
    },
    (start / BATCH) * 50,
  );
}

const report = setInterval(
  () => process.stdout.write(`${JSON.stringify({ open, opened, answers })}\n`),
  1_000,
);
process.once('SIGTERM', () => {
  stopping = true;
  clearInterval(report);
  for (const socket of sockets) socket.destroy();
  process.stdout.write(`${JSON.stringify({ open, opened, answers, stopped: true })}\n`);
  setTimeout(() => process.exit(0), 100);
});
