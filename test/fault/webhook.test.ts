// Fault tests of the webhook as it runs in a pod: the real `serve` process, real TLS, real sockets on
// 127.0.0.1. Hostile or broken clients (silent, half a ClientHello, slowloris, a dribbled body) must be
// cut at the configured timeouts and leave no descriptor or memory behind; certificate swaps and SIGTERM
// under a steady load must fail no request; huge pods and clients hoarding request bodies must keep it
// under the Deployment's 256Mi; a pod must never be refused because of us; a bad certificate at rotation
// must never be presented. Each test prints what it measured on `# figure:` lines.
//
// The server runs with its production timeouts (config/defaults.ts), so what is tested is what ships;
// that is why the slow-client test takes about REQUEST_TIMEOUT_MS.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyPairFiles } from '../../src/admission/tls.js';
import type { TLSSocket } from 'node:tls';
import {
  createCA,
  issueServingCert,
  type CertificateAuthority,
  type IssuedCertificate,
} from '../../src/certs/authority.js';
import {
  ANNOTATIONS,
  DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
  HEADERS_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  TLS_HANDSHAKE_TIMEOUT_MS,
  WEBHOOK_NODE_FLAGS,
} from '../../src/config/defaults.js';
import type { Pod } from '../../src/inject/pod.js';
import { parseStatus } from '../../src/inject/status.js';
import { readJsonFixture } from '../helpers/paths.js';
import { annotationsSize, applyStrict, assertValidPod } from '../helpers/pod-check.js';
import {
  getHealth,
  HOST,
  rawConnection,
  sampleValue,
  SecretVolume,
  send,
  startServeOn,
  underLoad,
  writeKeyPairFiles,
  type ServeProcess,
} from '../helpers/webhook.js';
import { waitUntil } from '../helpers/wait.js';

const review = () => readJsonFixture('peers', 'ymping-admissionreview-v1-pod-create.json');
const fingerprintOf = (pair: IssuedCertificate) => new X509Certificate(pair.certPem).fingerprint256;

/** Descriptors and resident memory of a process, from /proc: now, and its high-water mark. */
interface Footprint {
  fds: number;
  rssMiB: number;
  peakRssMiB: number;
}

function footprint(pid: number): Footprint {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mib = (field: string) =>
    Math.round(Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1]) / 102.4) / 10;
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    rssMiB: mib('VmRSS'),
    peakRssMiB: mib('VmHWM'),
  };
}

const figure = (t: TestContext, text: string) => t.diagnostic(`figure: ${text}`);
const show = (f: Footprint) => `${f.fds} fds, ${f.rssMiB} MiB RSS`;

/**
 * Opens `count` TCP connections in batches (so the listen backlog never overflows), each sending
 * `firstBytes` and then nothing; resolves once all are connected. `closed` counts the ones the
 * server has closed.
 */
async function openSilentClients(
  port: number,
  count: number,
  firstBytes: Buffer | undefined,
): Promise<{ sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = [];
  let closed = 0;
  const BATCH = 200;
  for (let start = 0; start < count; start += BATCH) {
    const batch = Array.from(
      { length: Math.min(BATCH, count - start) },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = tcpConnect(port, HOST, () => {
            if (firstBytes) socket.write(firstBytes);
            resolve(socket);
          });
          socket.once('error', reject);
          // Either way the server ended it: a FIN, a reset (its unread ClientHello bytes), or a close.
          socket.once('close', () => {
            closed++;
          });
          socket.on('end', () => socket.destroy());
        }),
    );
    sockets.push(...(await Promise.all(batch)));
    for (const socket of sockets) socket.removeAllListeners('error').on('error', () => undefined);
  }
  return { sockets, closed: () => closed };
}

/**
 * The first 9 bytes of a TLS 1.2 ClientHello: a handshake record header announcing 512 bytes, the
 * ClientHello type and length, and the client version. OpenSSL waits for the rest forever.
 */
const PARTIAL_CLIENT_HELLO = Buffer.from([
  0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
]);

/** Waits until the serve process's descriptor count is back within `slack` of `baseline`. */
async function fdsBackTo(serve: ServeProcess, baseline: number, slack = 3): Promise<Footprint> {
  await waitUntil(
    `descriptors of serve back to ${baseline} (±${slack})`,
    () => footprint(serve.child.pid!).fds <= baseline + slack,
    { timeoutMs: 20_000 },
  );
  return footprint(serve.child.pid!);
}

async function stopServe(serve: ServeProcess): Promise<void> {
  serve.child.kill('SIGTERM');
  const exit = await serve.exit;
  assert.deepEqual(exit, { code: 0, signal: null }, serve.stderr());
}

/** Writes `text` a byte at a time, one byte every `everyMs`, until the socket closes. */
function dribble(socket: Socket, text: string, everyMs: number): void {
  let next = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || next >= text.length) return clearInterval(timer);
    socket.write(text[next++]!);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

describe('webhook faults (real serve process)', { timeout: 170_000 }, () => {
  let dir: string;
  let authority: CertificateAuthority;
  let pairs: IssuedCertificate[];
  let ca: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-fault-'));
    authority = await createCA({ commonName: 'fault test CA', validDays: 1 });
    ca = authority.certPem;
    pairs = await Promise.all(
      [0, 1, 2, 3].map(() => issueServingCert(authority, ['localhost', HOST], { validDays: 1 })),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Plain files in a directory of their own, as `--tls-cert`/`--tls-key`. */
  const pairFiles = (pair: IssuedCertificate) =>
    writeKeyPairFiles(mkdtempSync(join(dir, 'plain-')), pair);
  const serveOn = (files: KeyPairFiles, ...args: string[]) => startServeOn(files, args);
  const serveWith = (pair: IssuedCertificate, ...args: string[]) =>
    serveOn(pairFiles(pair), ...args);
  const assertAnswering = async (serve: ServeProcess, message?: string) =>
    assert.equal((await send(serve.port, review(), { ca })).status, 200, message);

  it(
    'cuts silent TCP clients and partial ClientHellos at the handshake timeout, twice over: fds back to baseline, RSS stays bounded',
    { timeout: 60_000 },
    async (t) => {
      // All 2,000 from one address, held at once: this test is about handshake timeouts, not the per-peer share.
      const serve = await serveWith(
        pairs[0]!,
        '--max-connections',
        '4096',
        '--max-connections-per-peer',
        '4096',
      );
      try {
        await assertAnswering(serve);
        await sleep(500);
        const baseline = footprint(serve.child.pid!);
        figure(t, `silent clients: before ${show(baseline)}`);
        for (const round of [1, 2]) {
          const started = performance.now();
          const silent = await openSilentClients(serve.port, 1500, undefined);
          const partial = await openSilentClients(serve.port, 500, PARTIAL_CLIENT_HELLO);
          await waitUntil(
            'serve holding all 2,000 connections',
            () => footprint(serve.child.pid!).fds >= baseline.fds + 2000,
          );
          const during = footprint(serve.child.pid!);
          // The server, not the client, must end every one of them: the clients never close first.
          await waitUntil(
            'the server closing every silent and half-handshaken connection',
            () => silent.closed() + partial.closed() === 2000,
            { timeoutMs: TLS_HANDSHAKE_TIMEOUT_MS + 15_000 },
          );
          const cutAfterS = (performance.now() - started) / 1000;
          const afterwards = await fdsBackTo(serve, baseline.fds);
          figure(
            t,
            `silent clients, round ${round}: 1,500 silent + 500 partial ClientHellos: ${show(during)} (≈ ${Math.round(((during.rssMiB - baseline.rssMiB) * 1024) / 2000)} KiB each); all cut by the server after ${cutAfterS.toFixed(1)} s; after ${show(afterwards)}`,
          );
          assert.ok(
            cutAfterS >= TLS_HANDSHAKE_TIMEOUT_MS / 1000 - 1,
            `cut after ${cutAfterS} s, before the handshake timeout`,
          );
          // Freed TLS memory is kept by malloc for reuse rather than handed back, so RSS stays above the
          // baseline: measured after two rounds +66 to +87 MiB on Node 20, +111 to +122 on Node 24 (it levels off
          // with more rounds, see DEFAULT_MAX_CONNECTIONS). The leak kept ~60 KiB per connection for good,
          // +240 MiB after two rounds; the descriptor checks above are the exact test, this a backstop.
          assert.ok(
            afterwards.rssMiB < baseline.rssMiB + 180,
            `round ${round}: RSS ${afterwards.rssMiB} MiB, baseline ${baseline.rssMiB} MiB`,
          );
          for (const socket of [...silent.sockets, ...partial.sockets]) socket.destroy();
        }
        await assertAnswering(serve, 'still answering afterwards');
      } finally {
        await stopServe(serve);
      }
    },
  );

  it(
    'cuts slowloris headers at the headers timeout and a dribbled body at the request timeout, with a 408',
    { timeout: 60_000 },
    async (t) => {
      const serve = await serveWith(pairs[0]!);
      const COUNT = 50;
      try {
        await sleep(500);
        const baseline = footprint(serve.child.pid!);
        const started = performance.now();
        const body = JSON.stringify(review());
        const slowClients = async (request: string, headBytes: number) =>
          Promise.all(
            Array.from({ length: COUNT }, async () => {
              const socket = await rawConnection(serve.port, ca);
              let answer = '';
              socket
                .on('data', (chunk: Buffer) => {
                  answer += chunk.toString('latin1');
                })
                .on('error', () => undefined);
              socket.write(request.slice(0, headBytes));
              dribble(socket, request.slice(headBytes), 1_000);
              return new Promise<{ seconds: number; answer: string }>((resolve) =>
                socket.once('close', () =>
                  resolve({ seconds: (performance.now() - started) / 1000, answer }),
                ),
              );
            }),
          );
        const head = `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
        const headers = slowClients(head + body, 10);
        const bodies = slowClients(head + body, head.length + 10);
        await sleep(3_000);
        const during = footprint(serve.child.pid!);
        const [cutHeaders, cutBodies] = await Promise.all([headers, bodies]);
        const afterwards = await fdsBackTo(serve, baseline.fds);
        const range = (cut: Array<{ seconds: number }>) =>
          `${Math.min(...cut.map((c) => c.seconds)).toFixed(1)}-${Math.max(...cut.map((c) => c.seconds)).toFixed(1)} s`;
        figure(
          t,
          `slow clients: before ${show(baseline)}; with ${COUNT} slowloris + ${COUNT} slow bodies ${show(during)}; after ${show(afterwards)}`,
        );
        figure(
          t,
          `slow clients: slowloris cut after ${range(cutHeaders)} (headers timeout ${HEADERS_TIMEOUT_MS / 1000} s), slow bodies after ${range(cutBodies)} (request timeout ${REQUEST_TIMEOUT_MS / 1000} s)`,
        );
        /** Each one answered 408 and closed from a second before `timeoutMs` to 5 s after it. */
        const assertCutAt = (cuts: typeof cutHeaders, timeoutMs: number, what: string) => {
          for (const cut of cuts) {
            assert.match(cut.answer, /^HTTP\/1.1 408 /);
            assert.ok(
              cut.seconds >= timeoutMs / 1000 - 1 && cut.seconds < timeoutMs / 1000 + 5,
              `${what} cut after ${cut.seconds} s`,
            );
          }
        };
        assertCutAt(cutHeaders, HEADERS_TIMEOUT_MS, 'slowloris');
        assertCutAt(cutBodies, REQUEST_TIMEOUT_MS, 'slow body');
        await assertAnswering(serve, 'still answering afterwards');
      } finally {
        await stopServe(serve);
      }
    },
  );

  it(
    'takes certificate swaps under load (..data symlink swaps and in-place rewrites) without a failed request',
    { timeout: 60_000 },
    async (t) => {
      const volume = new SecretVolume(mkdtempSync(join(dir, 'secret-')));
      volume.write(pairs[0]!);
      const swapped = await serveOn(volume);
      let symlinkSwaps = 0;
      try {
        const load = await underLoad(
          swapped.port,
          ca,
          async (seen) => {
            for (const pair of [pairs[1]!, pairs[2]!, pairs[3]!, pairs[0]!]) {
              volume.write(pair);
              symlinkSwaps++;
              await waitUntil(
                'new connections seeing the swapped-in certificate',
                () => seen() === fingerprintOf(pair),
              );
            }
          },
          { maxRequests: 20_000 },
        );
        figure(
          t,
          `certificate swaps: ${symlinkSwaps} ..data symlink swaps, ${load.succeeded} reviews answered, ${load.failures.length} failed`,
        );
        assert.deepEqual(load.failures, []);
      } finally {
        await stopServe(swapped);
      }

      const files = pairFiles(pairs[0]!);
      const rewritten = await serveOn(files);
      let rewrites = 0;
      try {
        const load = await underLoad(
          rewritten.port,
          ca,
          async (seen) => {
            for (const pair of [pairs[1]!, pairs[2]!, pairs[3]!]) {
              // Cert first, key second, as a person or a script does: the mismatched moment keeps the old pair.
              writeFileSync(files.certFile, pair.certPem);
              writeFileSync(files.keyFile, pair.keyPem);
              rewrites++;
              await waitUntil(
                'new connections seeing the rewritten certificate',
                () => seen() === fingerprintOf(pair),
              );
            }
          },
          { maxRequests: 20_000 },
        );
        figure(
          t,
          `certificate swaps: ${rewrites} in-place rewrites, ${load.succeeded} reviews answered, ${load.failures.length} failed`,
        );
        assert.deepEqual(load.failures, []);
        assert.equal(
          rewritten.lines.filter((l) => l.msg === 'TLS certificate reloaded').length,
          rewrites,
        );
      } finally {
        await stopServe(rewritten);
      }
    },
  );

  it(
    'on SIGTERM under load: no in-flight request fails, and serve exits 0 within its grace',
    { timeout: 60_000 },
    async (t) => {
      const GRACE_S = 3;
      const serve = await serveWith(pairs[0]!, '--shutdown-grace', String(GRACE_S));
      let exitS = 0;
      let exit: Awaited<ServeProcess['exit']> | undefined;
      const load = await underLoad(
        serve.port,
        ca,
        async () => {
          await sleep(500);
          const signalled = performance.now();
          serve.child.kill('SIGTERM');
          exit = await serve.exit;
          exitS = (performance.now() - signalled) / 1000;
          // Keep knocking a moment after the exit: those requests are refused, never half-answered.
          await sleep(300);
        },
        { maxRequests: 50_000, allowRefused: true },
      );
      // "Refused": connections that never completed TLS, so never sent their review: refused by the closed
      // port, or queued by the kernel but not yet accepted when the port closed (Linux resets those).
      // In a cluster the API server has stopped connecting long before the grace ends.
      figure(
        t,
        `SIGTERM under load: ${load.succeeded} reviews answered, ${load.failures.length} failed in flight, ${load.refused} refused before TLS; exit ${exit?.code} after ${exitS.toFixed(1)} s (grace ${GRACE_S} s)`,
      );
      assert.deepEqual(load.failures, []);
      assert.deepEqual(exit, { code: 0, signal: null }, serve.stderr());
      assert.ok(exitS >= GRACE_S && exitS < GRACE_S + 5, `exited after ${exitS} s`);
      assert.ok(load.refused > 0, 'the load ran past the exit');
    },
  );
});

/** A review of a pod with `count` containers as small as the API server takes (the attack's pod). */
function manyContainerReview(count: number): Record<string, unknown> {
  const base = review() as { request: { object: { spec: Record<string, unknown> } } };
  base.request.object.spec.containers = Array.from({ length: count }, (_, i) => ({
    name: `app-${i}`,
    image: 'busybox',
  }));
  return base;
}

interface Hog {
  socket: TLSSocket;
  /** The status line the server answered with, if the client got to read one. */
  answer: () => string;
  /** Milliseconds from the request head to the server closing the connection; undefined while open. */
  closedAfterMs: () => number | undefined;
  /** Resolves once `sendBytes` of body are written, or the server closed the connection. */
  settled: Promise<void>;
}

/** A client that declares a `declared`-byte body, sends `sendBytes` of it, and then holds the connection. */
async function openHog(
  port: number,
  ca: string,
  declared: number,
  sendBytes: number,
): Promise<Hog> {
  const socket = await rawConnection(port, ca);
  let answer = '';
  let closedAt: number | undefined;
  const started = performance.now();
  socket
    .on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    })
    .on('error', () => undefined)
    .once('close', () => {
      closedAt = performance.now();
    });
  socket.write(
    `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const settled = (async () => {
    for (
      let sent = 0;
      sent < sendBytes && !socket.destroyed && socket.writable;
      sent += chunk.length
    ) {
      if (!socket.write(chunk.subarray(0, Math.min(chunk.length, sendBytes - sent)))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done).off('close', done);
            resolve();
          };
          socket.on('drain', done).on('close', done);
        });
      }
    }
  })();
  return {
    socket,
    answer: () => answer.split('\r\n', 1)[0]!,
    closedAfterMs: () => (closedAt === undefined ? undefined : Math.round(closedAt - started)),
    settled,
  };
}

describe(
  "webhook memory and size bounds (real serve process, the image's Node flags)",
  { timeout: 120_000 },
  () => {
    let dir: string;
    let ca: string;
    let files: { certFile: string; keyFile: string };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-fault-mem-'));
      const authority = await createCA({ commonName: 'fault test CA', validDays: 1 });
      ca = authority.certPem;
      const pair = await issueServingCert(authority, ['localhost', HOST], { validDays: 1 });
      files = writeKeyPairFiles(dir, pair);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const serve = () => startServeOn(files);
    const metric = async (serveProcess: ServeProcess, sample: string) =>
      sampleValue((await getHealth(serveProcess.healthPort, '/metrics')).text, sample);

    it('stays under the 256Mi limit with two 10,000-container pods and 40 clients each holding an unfinished 7.9 MB body', async (t) => {
      const LIMIT_MIB = 256;
      const HOGS = 40;
      const DECLARED = 7_900_000;
      const SENT = 7_800_000;
      const server = await serve();
      const hogs: Hog[] = [];
      try {
        assert.equal((await send(server.port, review(), { ca })).status, 200);
        await sleep(500);
        const baseline = footprint(server.child.pid!);

        hogs.push(
          ...(await Promise.all(
            Array.from({ length: HOGS }, () => openHog(server.port, ca, DECLARED, SENT)),
          )),
        );
        await Promise.all(hogs.map((hog) => hog.settled));
        await sleep(500); // a refusal still on its way arrives
        // Refused: answered 503 and closed at once. The client, still sending, may see the 503 or only
        // the reset the unread body causes; the server counts every refusal.
        const held = hogs.filter((hog) => hog.closedAfterMs() === undefined);
        const refused = hogs.filter((hog) => hog.closedAfterMs() !== undefined);
        const saw503 = refused.filter((hog) => /^HTTP\/1.1 503 /.test(hog.answer())).length;
        const budget = DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT;
        assert.equal(
          held.length,
          Math.floor(budget / DECLARED),
          'as many hogs held as fit the body budget',
        );
        for (const hog of held) assert.equal(hog.answer(), '', 'a held hog has no answer yet');
        for (const hog of refused) assert.match(hog.answer(), /^(HTTP\/1.1 503 .*)?$/);
        assert.equal(
          await metric(server, 'lxcfs_webhook_request_bytes_in_flight'),
          held.length * DECLARED,
        );
        const withHogs = footprint(server.child.pid!);

        const pod = manyContainerReview(10_000);
        const podBytes = Buffer.byteLength(JSON.stringify(pod));
        const started = performance.now();
        const replies = await Promise.all([
          send(server.port, pod, { ca }),
          send(server.port, manyContainerReview(10_000), { ca }),
        ]);
        const seconds = (performance.now() - started) / 1000;
        for (const reply of replies) {
          assert.equal(reply.status, 200, reply.text);
          const response = (
            JSON.parse(reply.text) as {
              response: { allowed: boolean; patch?: string; warnings?: string[] };
            }
          ).response;
          assert.equal(response.allowed, true);
          assert.equal(response.patch, undefined, 'left unchanged');
          assert.match(
            response.warnings?.[0] ?? '',
            /^lxcfs: not injected: mounts for 10000 containers would make this \d+ KiB pod too large to store$/,
          );
        }
        const after = footprint(server.child.pid!);
        const refusedAfter = refused.map((hog) => hog.closedAfterMs()!);
        figure(
          t,
          `memory: baseline ${show(baseline)}; ${HOGS} hogs (${DECLARED / 1e6} MB declared, ${SENT / 1e6} MB sent each): ${held.length} held ` +
            `(${((held.length * DECLARED) / 1e6).toFixed(1)} MB of the ${budget / 1048576} MiB budget), ${refused.length} answered 503 and closed ` +
            `within ${Math.max(...refusedAfter)} ms, unread (${saw503} read the 503, the others a reset); ${show(withHogs)}`,
        );
        figure(
          t,
          `memory: two ${(podBytes / 1000).toFixed(0)} KB reviews of 10,000 containers at once, beside the hogs: answered in ${seconds.toFixed(2)} s, ` +
            `unchanged with a warning, responses ${replies.map((r) => Buffer.byteLength(r.text)).join(' and ')} bytes; ${show(after)}; ` +
            `peak RSS ${after.peakRssMiB} MiB (limit ${LIMIT_MIB} MiB; V8 flags ${WEBHOOK_NODE_FLAGS.join(' ')})`,
        );
        for (const reply of replies)
          assert.ok(Buffer.byteLength(reply.text) < 1024, 'a small answer');
        assert.ok(after.peakRssMiB < LIMIT_MIB, `peak RSS ${after.peakRssMiB} MiB`);

        // The hogs leave: the budget is whole again and pods are injected as before.
        for (const hog of hogs) hog.socket.destroy();
        await waitUntil(
          'the body budget given back',
          async () => (await metric(server, 'lxcfs_webhook_request_bytes_in_flight')) === 0,
        );
        const normal = await send(server.port, review(), { ca });
        assert.ok(
          (JSON.parse(normal.text) as { response: { patch?: string } }).response.patch,
          'an ordinary pod is injected again',
        );
        assert.equal(
          await metric(server, 'lxcfs_webhook_requests_total{result="rejected",reason="busy"}'),
          refused.length,
          'every refusal counted',
        );
        assert.equal(await metric(server, 'lxcfs_webhook_pod_skips_total{reason="too-large"}'), 2);
      } finally {
        for (const hog of hogs) hog.socket.destroy();
        await stopServe(server);
      }
    });

    it('never gets a pod refused for its annotations: a 150 KiB invalid annotation is echoed clipped', async (t) => {
      const server = await serve();
      try {
        const input = review() as { request: { object: Pod } };
        const pod = input.request.object;
        pod.metadata = {
          ...pod.metadata,
          annotations: { [ANNOTATIONS.files]: `meminfo,${'x'.repeat(150 * 1024)}` },
        };
        const reply = await send(server.port, input, { ca });
        assert.equal(reply.status, 200);
        const response = (
          JSON.parse(reply.text) as {
            response: { allowed: boolean; patch: string; warnings: string[] };
          }
        ).response;
        assert.equal(response.allowed, true);
        const patched = applyStrict(
          pod,
          JSON.parse(Buffer.from(response.patch, 'base64').toString()) as unknown[],
        );
        assertValidPod(patched); // the API server's checks, the 256 KiB annotation limit among them
        const status = patched.metadata!.annotations![ANNOTATIONS.status]!;
        figure(
          t,
          `150 KiB invalid annotation: annotations ${annotationsSize(pod)} bytes before, ${annotationsSize(patched)} after ` +
            `(limit 262144); status annotation ${Buffer.byteLength(status)} bytes; response ${Buffer.byteLength(reply.text)} bytes; warning "${response.warnings[0]}"`,
        );
        assert.ok(annotationsSize(patched) <= 256 * 1024);
        assert.ok(Buffer.byteLength(status) < 1024);
        assert.equal(parseStatus(status)?.skipped?.reason, 'invalid-annotation');
      } finally {
        await stopServe(server);
      }
    });
  },
);

describe(
  'certificate checks at rotation (real serve process, real handshakes)',
  { timeout: 60_000 },
  () => {
    it('never presents an expired, not-yet-valid, wrong-name or oversized certificate: the old one stays, with a warning and a metric', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-fault-tls-'));
      const authority = await createCA({ commonName: 'fault test CA', validDays: 1 });
      const issue = (options: { names?: string[]; now?: Date } = {}) =>
        issueServingCert(authority, options.names ?? ['localhost', HOST], {
          validDays: 1,
          now: options.now,
        });
      const [first, last] = await Promise.all([issue(), issue()]);
      const volume = new SecretVolume(mkdtempSync(join(dir, 'secret-')));
      volume.write(first);
      const server = await startServeOn(volume);
      const metrics = async () => (await getHealth(server.healthPort, '/metrics')).text;
      try {
        const DAY = 86_400_000;
        const chained = await issue();
        const bad: Array<[string, IssuedCertificate]> = [
          ['expired', await issue({ now: new Date(Date.now() - 2 * DAY) })],
          ['not-yet-valid', await issue({ now: new Date(Date.now() + DAY) })],
          ['wrong-name', await issue({ names: ['lxcfs-webhook.elsewhere.svc'] })],
          // ~200 KB of PEM: the attack's chain.
          [
            'chain-too-large',
            { ...chained, certPem: `${chained.certPem}\n${`${authority.certPem}\n`.repeat(400)}` },
          ],
        ];
        const results: string[] = [];
        for (const [reason, pair] of bad) {
          const written = performance.now();
          volume.write(pair);
          await waitUntil(`the ${reason} certificate refused`, () =>
            server.lines.some((l) => l.level === 'warn' && l.reason === reason),
          );
          const refusedAfterMs = Math.round(performance.now() - written);
          // New connections, so new handshakes: each must be shown the first certificate.
          const handshakes = await Promise.all(
            [0, 1, 2].map(() => send(server.port, review(), { ca: authority.certPem })),
          );
          for (const reply of handshakes) {
            assert.equal(reply.status, 200);
            assert.equal(
              reply.fingerprint256,
              fingerprintOf(first),
              `${reason}: the old certificate is presented`,
            );
          }
          const text = await metrics();
          assert.equal(
            sampleValue(
              text,
              `lxcfs_webhook_tls_reloads_total{result="rejected",reason="${reason}"}`,
            ),
            1,
          );
          assert.equal(sampleValue(text, 'lxcfs_webhook_tls_files_rejected'), 1);
          results.push(
            `${reason} (${Math.round(Buffer.byteLength(pair.certPem) / 1024)} KiB PEM) refused after ${refusedAfterMs} ms`,
          );
        }
        volume.write(last);
        await waitUntil(
          'the good certificate presented',
          async () =>
            (await send(server.port, review(), { ca: authority.certPem })).fingerprint256 ===
            fingerprintOf(last),
        );
        const text = await metrics();
        assert.equal(sampleValue(text, 'lxcfs_webhook_tls_files_rejected'), 0);
        const secondsLeft = sampleValue(text, 'lxcfs_webhook_certificate_expiry_seconds');
        assert.ok(
          secondsLeft > 23 * 3600 && secondsLeft <= 86_400 + 300,
          `certificate_expiry_seconds ${secondsLeft}`,
        );
        figure(
          t,
          `certificates at rotation: ${results.join('; ')}; 3 new handshakes after each presented the old certificate; ` +
            `then a good one was presented; lxcfs_webhook_certificate_expiry_seconds ${secondsLeft}`,
        );
        assert.equal(
          server.lines.filter((l) => l.level === 'warn').length,
          bad.length,
          'one warning each',
        );
      } finally {
        await stopServe(server);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
