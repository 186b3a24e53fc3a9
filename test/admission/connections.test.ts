// The webhook port's connection rules on real TLS connections over loopback: a new connection is served
// at the bound by closing an idle or unfinished one of the heaviest peer (each 127.0.0.x address is a
// peer of its own), a peer's share, pipelined requests answered in order with back-pressure, each
// request's deadline from the API server's `?timeout=`, and client-certificate authentication.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { peerAddress, requestDeadlineMs } from '../../src/admission/connections.js';
import type { WebhookConfig } from '../../src/admission/webhook.js';
import { readJsonFixture } from '../helpers/paths.js';
import {
  evictedConnections,
  exchange,
  getHealth,
  postRequest,
  rawConnection,
  readResponse,
  refusedConnections,
  sampleValue,
  send,
  startTestWebhook,
  type TestWebhook,
} from '../helpers/webhook.js';
import { waitUntil } from '../helpers/wait.js';

interface Review {
  request: { uid: string };
}
const review = (uid = 'c0ffee00-0000-4000-8000-000000000000') => {
  const r = readJsonFixture<Review>('peers', 'ymping-admissionreview-v1-pod-create.json');
  r.request.uid = uid;
  return r;
};

/** Sends one review on `socket` and checks that it is answered 200. */
async function assertAnswersReview(socket: TLSSocket): Promise<void> {
  assert.match(
    (await exchange(socket, postRequest(JSON.stringify(review())))).head,
    /^HTTP\/1.1 200/,
  );
}

/** Resolves when the server closes `socket`; `closed()` says whether it has. */
function watchClose(socket: TLSSocket): { closed: () => boolean; done: Promise<void> } {
  let closed = false;
  socket.on('error', () => undefined);
  const done = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  return { closed: () => closed, done };
}

/** Splits a stream of HTTP/1.1 responses (Content-Length framed) into their status lines and bodies. */
function responses(stream: Buffer): Array<{ status: number; body: string }> {
  const out: Array<{ status: number; body: string }> = [];
  for (let response = readResponse(stream); response; response = readResponse(stream, response.end))
    out.push({ status: Number(response.head.slice(9, 12)), body: response.body });
  return out;
}

describe('webhook connections', () => {
  let test: TestWebhook | undefined;
  const start = async (overrides: Partial<WebhookConfig>) => {
    test = await startTestWebhook(overrides);
    return test;
  };
  const scrape = async () => (await getHealth(test!.webhook.healthPort, '/metrics')).text;
  after(async () => test?.webhook.stop());
  const stop = async () => {
    await test?.webhook.stop();
    test = undefined;
  };

  it("at --max-connections, a new client is served: the heaviest peer's oldest unfinished connection makes room", async () => {
    const { webhook, ca } = await start({ maxConnections: 4, maxConnectionsPerPeer: 4 });
    const held = await Promise.all(
      [1, 2, 3, 4].map(() => rawConnection(webhook.port, ca, { localAddress: '127.0.0.2' })),
    );
    const watched = held.map(watchClose);
    try {
      assert.equal(
        (await send(webhook.port, review(), { ca })).status,
        200,
        'the fifth connection, from 127.0.0.1, is answered',
      );
      await watched[0]!.done;
      assert.deepEqual(
        watched.map((w) => w.closed()),
        [true, false, false, false],
        "the oldest of the attacker's was closed",
      );
      const metrics = await scrape();
      assert.equal(evictedConnections(metrics, 'max-connections', 'unfinished'), 1);
      assert.equal(refusedConnections(metrics, 'max-connections'), 0);
    } finally {
      for (const socket of held) socket.destroy();
      await stop();
    }
  });

  it('closes the least recently used idle keep-alive connection before any unfinished one', async () => {
    const { webhook, ca } = await start({ maxConnections: 6, maxConnectionsPerPeer: 6 });
    const held = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(() => rawConnection(webhook.port, ca, { localAddress: '127.0.0.2' })),
    );
    const watched = held.map(watchClose);
    const clients: TLSSocket[] = [];
    /** A new client from 127.0.0.1 that gets an answer and stays connected, so the port stays full. */
    const newClient = async () => {
      const socket = await rawConnection(webhook.port, ca);
      clients.push(socket);
      await assertAnswersReview(socket);
    };
    try {
      // 2 and then 1 answer a review each and go idle; the others never send a request.
      for (const socket of [held[2]!, held[1]!]) await assertAnswersReview(socket);
      await newClient();
      await watched[2]!.done;
      assert.deepEqual(
        watched.map((w) => w.closed()),
        [false, false, true, false, false, false],
        'the idle one used longest ago',
      );
      await newClient();
      await watched[1]!.done;
      await newClient();
      await watched[0]!.done;
      assert.deepEqual(
        watched.map((w) => w.closed()),
        [true, true, true, false, false, false],
        'then the oldest unfinished one',
      );
      const metrics = await scrape();
      assert.equal(evictedConnections(metrics, 'max-connections', 'idle'), 2);
      assert.equal(evictedConnections(metrics, 'max-connections', 'unfinished'), 1);
    } finally {
      for (const socket of [...held, ...clients]) socket.destroy();
      await stop();
    }
  });

  it('holds a peer to --max-connections-per-peer: its next connection replaces one of its own, others are untouched', async () => {
    const { webhook, ca } = await start({ maxConnections: 100, maxConnectionsPerPeer: 3 });
    const otherSocket = await rawConnection(webhook.port, ca, { localAddress: '127.0.0.3' });
    const other = watchClose(otherSocket);
    const held = await Promise.all(
      [1, 2, 3].map(() => rawConnection(webhook.port, ca, { localAddress: '127.0.0.2' })),
    );
    const watched = held.map(watchClose);
    const fourth = await rawConnection(webhook.port, ca, { localAddress: '127.0.0.2' });
    try {
      await watched[0]!.done;
      await assertAnswersReview(fourth);
      assert.deepEqual(
        watched.map((w) => w.closed()),
        [true, false, false],
      );
      assert.equal(other.closed(), false);
      assert.equal(evictedConnections(await scrape(), 'peer-limit', 'unfinished'), 1);
    } finally {
      for (const socket of [...held, fourth, otherSocket]) socket.destroy();
      await stop();
    }
  });

  it('answers 1,000 pipelined reviews on one connection, all in order, and keeps the connection', async () => {
    const { webhook, ca } = await start({});
    const socket = await rawConnection(webhook.port, ca);
    try {
      const uids = Array.from(
        { length: 1000 },
        (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      );
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
      });
      const closed = watchClose(socket);
      socket.write(uids.map((uid) => postRequest(JSON.stringify(review(uid)))).join(''));
      await waitUntil(
        '1,000 answers',
        () => responses(received).length === uids.length || closed.closed(),
        { timeoutMs: 60_000 },
      );
      const answers = responses(received);
      assert.equal(closed.closed(), false, 'the connection stays open');
      assert.deepEqual(
        answers.map((a) => a.status),
        uids.map(() => 200),
      );
      assert.deepEqual(
        answers.map((a) => (JSON.parse(a.body) as { response: { uid: string } }).response.uid),
        uids,
      );
      // Still usable afterwards.
      await assertAnswersReview(socket);
    } finally {
      socket.destroy();
      await stop();
    }
  });

  it('stops reading a pipelining client that does not read its answers (back-pressure), and answers the rest once it reads', async () => {
    const { webhook, ca } = await start({});
    const socket = await rawConnection(webhook.port, ca);
    // Enough that the kernel's socket buffers cannot take all the answers (they took ~16,000 here).
    const COUNT = 64_000;
    try {
      const request = 'GET /mutate HTTP/1.1\r\nHost: localhost\r\n\r\n'; // a 405 each
      socket.pause();
      socket.write(request.repeat(COUNT));
      const answered = async () =>
        sampleValue(
          await scrape(),
          'lxcfs_webhook_requests_total{result="rejected",reason="method-not-allowed"}',
        );
      // Wait until the count stops moving: the server has stopped answering, so stopped reading.
      let stalled = -1;
      await waitUntil(
        'answers to stop while the client reads nothing',
        async () => {
          const previous = stalled;
          await sleep(1_000);
          stalled = await answered();
          return stalled === previous;
        },
        { timeoutMs: 60_000 },
      );
      assert.ok(
        stalled < COUNT / 2,
        `${stalled} of ${COUNT} answered while the client read nothing`,
      );
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += (chunk.toString('latin1').match(/HTTP\/1.1 405/g) ?? []).length;
      });
      socket.resume();
      await waitUntil(`all ${COUNT} answered`, () => received === COUNT, { timeoutMs: 120_000 });
    } finally {
      socket.destroy();
      await stop();
    }
  });

  it('cuts a request whose body is still arriving at its ?timeout= deadline, with a 408', async () => {
    const { webhook, ca } = await start({});
    const socket = await rawConnection(webhook.port, ca);
    try {
      const body = JSON.stringify(review());
      const request = postRequest(body, '/mutate?timeout=1s');
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
      });
      const started = performance.now();
      socket.write(request.slice(0, request.length - 10));
      await watchClose(socket).done;
      const seconds = (performance.now() - started) / 1000;
      assert.match(answer, /^HTTP\/1.1 408 /);
      assert.ok(seconds >= 0.9 && seconds < 3, `cut after ${seconds.toFixed(2)} s`);
    } finally {
      socket.destroy();
      await stop();
    }
  });

  it("reads the deadline from the API server's Go durations, never beyond the request timeout", () => {
    assert.equal(requestDeadlineMs('/mutate?timeout=10s', 30_000), 10_000);
    assert.equal(requestDeadlineMs('/mutate?timeout=1.5s', 30_000), 1_500);
    assert.equal(requestDeadlineMs('/mutate?timeout=500ms', 30_000), 500);
    assert.equal(requestDeadlineMs('/mutate?timeout=1m30s', 120_000), 90_000);
    for (const url of [
      '/mutate',
      '/mutate?timeout=',
      '/mutate?timeout=10',
      '/mutate?timeout=-1s',
      '/mutate?timeout=0s',
      '/mutate?timeout=2m',
      '/mutate?timeout=1e3s',
    ]) {
      assert.equal(requestDeadlineMs(url, 30_000), 30_000, url);
    }
    assert.equal(peerAddress('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(peerAddress('fd00::1'), 'fd00::1');
  });
});

describe('webhook connections: client certificates (--client-ca)', () => {
  let dir: string;
  let test: TestWebhook;
  const file = (name: string) => readFileSync(join(dir, name));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  /** A CA, and a client certificate it signs (extendedKeyUsage clientAuth), made with the openssl CLI. */
  const makeCa = (name: string, client: string) => {
    /** A new P-256 key and a certificate for it valid one day, self-signed unless `signing` names a CA. */
    const newCertificate = (subject: string, ...signing: string[]) =>
      openssl(
        'req',
        '-x509',
        '-new',
        '-nodes',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-keyout',
        `${subject}.key`,
        '-out',
        `${subject}.crt`,
        '-days',
        '1',
        '-subj',
        `/CN=${subject}`,
        ...signing,
      );
    newCertificate(name);
    newCertificate(
      client,
      '-CA',
      `${name}.crt`,
      '-CAkey',
      `${name}.key`,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      'extendedKeyUsage=clientAuth',
    );
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lxcfs-client-ca-'));
    makeCa('client-ca', 'apiserver');
    makeCa('other-ca', 'intruder');
    test = await startTestWebhook({ clientCaFile: join(dir, 'client-ca.crt') });
  });
  after(async () => {
    await test.webhook.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One review on a new connection; what came back, or the error that ended it. */
  async function attempt(options: {
    cert?: Buffer;
    key?: Buffer;
    maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  }): Promise<string> {
    let socket: TLSSocket;
    try {
      socket = await rawConnection(test.webhook.port, test.ca, options as object);
    } catch (err) {
      return `refused: ${(err as NodeJS.ErrnoException).code}`;
    }
    try {
      return (await exchange(socket, postRequest(JSON.stringify(review())))).head.split('\r\n')[0]!;
    } catch (err) {
      return `refused: ${(err as Error).message}`;
    } finally {
      socket.destroy();
    }
  }

  it('serves a client with a certificate the CA signed, on TLS 1.2 and 1.3', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      assert.equal(
        await attempt({ cert: file('apiserver.crt'), key: file('apiserver.key'), maxVersion }),
        'HTTP/1.1 200 OK',
        maxVersion,
      );
    }
  });

  it('refuses, at the handshake, a client without a certificate or with one another CA signed; no request reaches the webhook', async () => {
    const before = await getHealth(test.webhook.healthPort, '/metrics');
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      assert.match(await attempt({ maxVersion }), /^refused/, `no certificate, ${maxVersion}`);
      assert.match(
        await attempt({ cert: file('intruder.crt'), key: file('intruder.key'), maxVersion }),
        /^refused/,
        `other CA, ${maxVersion}`,
      );
    }
    const now = (await getHealth(test.webhook.healthPort, '/metrics')).text;
    const moved = (sample: string) => sampleValue(now, sample) - sampleValue(before.text, sample);
    assert.equal(moved('lxcfs_webhook_connections_refused_total{reason="client-certificate"}'), 4);
    assert.equal(moved('lxcfs_webhook_request_duration_seconds_count'), 0, 'no request was read');
    assert.ok(
      !test.lines.some((l) => l.level === 'warn'),
      'refusals are not warnings: any pod can cause them',
    );
  });
});
