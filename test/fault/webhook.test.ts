// Fault tests of the webhook as it runs in a pod: the real `serve` process, real TLS, real sockets on
// 127.0.0.1. Hostile or broken clients (silent, half a ClientHello, slowloris, a dribbled body) must be
// cut at the configured timeouts and leave no descriptor or memory behind; certificate swaps and SIGTERM
// under a steady load must fail no request. Each test prints what it measured on `# figure:` lines.
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
import { createCA, issueServingCert, type CertificateAuthority, type IssuedCertificate } from '../../src/certs/authority.js';
import { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, TLS_HANDSHAKE_TIMEOUT_MS } from '../../src/config/defaults.js';
import { readJsonFixture } from '../helpers/paths.js';
import {
  eventually, HOST, rawConnection, SecretVolume, send, startServe, underLoad, type ServeProcess,
} from '../helpers/webhook.js';

const review = () => readJsonFixture('peers', 'ymping-admissionreview-v1-pod-create.json');
const fingerprintOf = (pair: IssuedCertificate) => new X509Certificate(pair.certPem).fingerprint256;

/** Descriptors and resident memory of a process, from /proc. */
interface Footprint {
  fds: number;
  rssMiB: number;
}

function footprint(pid: number): Footprint {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, rssMiB: Math.round(rssKiB / 102.4) / 10 };
}

const figure = (t: TestContext, text: string) => t.diagnostic(`figure: ${text}`);
const show = (f: Footprint) => `${f.fds} fds, ${f.rssMiB} MiB RSS`;

/**
 * Opens `count` TCP connections in batches (so the listen backlog never overflows), each sending
 * `firstBytes` and then nothing; resolves once all are connected. `closed` counts the ones the
 * server has closed.
 */
async function openSilentClients(port: number, count: number, firstBytes: Buffer | undefined): Promise<{ sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = [];
  let closed = 0;
  const BATCH = 200;
  for (let start = 0; start < count; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - start) }, () => new Promise<Socket>((resolve, reject) => {
      const socket = tcpConnect(port, HOST, () => {
        if (firstBytes) socket.write(firstBytes);
        resolve(socket);
      });
      socket.once('error', reject);
      // Either way the server ended it: a FIN, a reset (its unread ClientHello bytes), or a close.
      socket.once('close', () => { closed++; });
      socket.on('end', () => socket.destroy());
    }));
    sockets.push(...await Promise.all(batch));
    for (const socket of sockets) socket.removeAllListeners('error').on('error', () => undefined);
  }
  return { sockets, closed: () => closed };
}

/**
 * The first 9 bytes of a TLS 1.2 ClientHello: a handshake record header announcing 512 bytes, the
 * ClientHello type and length, and the client version. OpenSSL waits for the rest forever.
 */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

/** Waits until the serve process's descriptor count is back within `slack` of `baseline`. */
async function fdsBackTo(serve: ServeProcess, baseline: number, slack = 3): Promise<Footprint> {
  await eventually(`descriptors of serve back to ${baseline} (±${slack})`, () => footprint(serve.child.pid!).fds <= baseline + slack, 20_000);
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
    pairs = await Promise.all([0, 1, 2, 3].map(() => issueServingCert(authority, ['localhost', HOST], { validDays: 1 })));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Plain files in a directory of their own, as `--tls-cert`/`--tls-key`. */
  function pairFiles(pair: IssuedCertificate): { certFile: string; keyFile: string } {
    const sub = mkdtempSync(join(dir, 'plain-'));
    const files = { certFile: join(sub, 'tls.crt'), keyFile: join(sub, 'tls.key') };
    writeFileSync(files.certFile, pair.certPem);
    writeFileSync(files.keyFile, pair.keyPem);
    return files;
  }
  const serveOn = (files: { certFile: string; keyFile: string }, ...args: string[]) =>
    startServe(['--address', HOST, '--tls-cert', files.certFile, '--tls-key', files.keyFile, '--tls-server-name', 'localhost', '--shutdown-grace', '0', ...args]);
  const serveWith = (pair: IssuedCertificate, ...args: string[]) => serveOn(pairFiles(pair), ...args);

  it('cuts silent TCP clients and partial ClientHellos at the handshake timeout, twice over: fds back to baseline, RSS stays bounded', { timeout: 60_000 }, async (t) => {
    const serve = await serveWith(pairs[0]!, '--max-connections', '4096');
    try {
      assert.equal((await send(serve.port, review(), { ca })).status, 200);
      await sleep(500);
      const baseline = footprint(serve.child.pid!);
      figure(t, `silent clients: before ${show(baseline)}`);
      for (const round of [1, 2]) {
        const started = performance.now();
        const silent = await openSilentClients(serve.port, 1500, undefined);
        const partial = await openSilentClients(serve.port, 500, PARTIAL_CLIENT_HELLO);
        await eventually('serve holding all 2,000 connections', () => footprint(serve.child.pid!).fds >= baseline.fds + 2000);
        const during = footprint(serve.child.pid!);
        // The server, not the client, must end every one of them: the clients never close first.
        await eventually('the server closing every silent and half-handshaken connection',
          () => silent.closed() + partial.closed() === 2000, TLS_HANDSHAKE_TIMEOUT_MS + 15_000);
        const cutAfterS = (performance.now() - started) / 1000;
        const afterwards = await fdsBackTo(serve, baseline.fds);
        figure(t, `silent clients, round ${round}: 1,500 silent + 500 partial ClientHellos: ${show(during)} (≈ ${Math.round((during.rssMiB - baseline.rssMiB) * 1024 / 2000)} KiB each); all cut by the server after ${cutAfterS.toFixed(1)} s; after ${show(afterwards)}`);
        assert.ok(cutAfterS >= TLS_HANDSHAKE_TIMEOUT_MS / 1000 - 1, `cut after ${cutAfterS} s, before the handshake timeout`);
        // Freed TLS memory is kept by malloc for reuse rather than handed back, so RSS stays above the
        // baseline: measured after two rounds +66 to +87 MiB on Node 20, +111 to +122 on Node 24 (it levels off
        // with more rounds, see DEFAULT_MAX_CONNECTIONS). The leak kept ~60 KiB per connection for good,
        // +240 MiB after two rounds; the descriptor checks above are the exact test, this a backstop.
        assert.ok(afterwards.rssMiB < baseline.rssMiB + 180, `round ${round}: RSS ${afterwards.rssMiB} MiB, baseline ${baseline.rssMiB} MiB`);
        for (const socket of [...silent.sockets, ...partial.sockets]) socket.destroy();
      }
      assert.equal((await send(serve.port, review(), { ca })).status, 200, 'still answering afterwards');
    } finally {
      await stopServe(serve);
    }
  });

  it('cuts slowloris headers at the headers timeout and a dribbled body at the request timeout, with a 408', { timeout: 60_000 }, async (t) => {
    const serve = await serveWith(pairs[0]!);
    const COUNT = 50;
    try {
      await sleep(500);
      const baseline = footprint(serve.child.pid!);
      const started = performance.now();
      const body = JSON.stringify(review());
      const slowClients = async (request: string, headBytes: number) => Promise.all(Array.from({ length: COUNT }, async () => {
        const socket = await rawConnection(serve.port, ca);
        let answer = '';
        socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1'); }).on('error', () => undefined);
        socket.write(request.slice(0, headBytes));
        dribble(socket, request.slice(headBytes), 1_000);
        return new Promise<{ seconds: number; answer: string }>((resolve) => socket.once('close', () =>
          resolve({ seconds: (performance.now() - started) / 1000, answer })));
      }));
      const head = `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const headers = slowClients(head + body, 10);
      const bodies = slowClients(head + body, head.length + 10);
      await sleep(3_000);
      const during = footprint(serve.child.pid!);
      const [cutHeaders, cutBodies] = await Promise.all([headers, bodies]);
      const afterwards = await fdsBackTo(serve, baseline.fds);
      const range = (cut: Array<{ seconds: number }>) => `${Math.min(...cut.map((c) => c.seconds)).toFixed(1)}-${Math.max(...cut.map((c) => c.seconds)).toFixed(1)} s`;
      figure(t, `slow clients: before ${show(baseline)}; with ${COUNT} slowloris + ${COUNT} slow bodies ${show(during)}; after ${show(afterwards)}`);
      figure(t, `slow clients: slowloris cut after ${range(cutHeaders)} (headers timeout ${HEADERS_TIMEOUT_MS / 1000} s), slow bodies after ${range(cutBodies)} (request timeout ${REQUEST_TIMEOUT_MS / 1000} s)`);
      for (const cut of cutHeaders) {
        assert.match(cut.answer, /^HTTP\/1.1 408 /);
        assert.ok(cut.seconds >= HEADERS_TIMEOUT_MS / 1000 - 1 && cut.seconds < HEADERS_TIMEOUT_MS / 1000 + 5, `slowloris cut after ${cut.seconds} s`);
      }
      for (const cut of cutBodies) {
        assert.match(cut.answer, /^HTTP\/1.1 408 /);
        assert.ok(cut.seconds >= REQUEST_TIMEOUT_MS / 1000 - 1 && cut.seconds < REQUEST_TIMEOUT_MS / 1000 + 5, `slow body cut after ${cut.seconds} s`);
      }
      assert.equal((await send(serve.port, review(), { ca })).status, 200, 'still answering afterwards');
    } finally {
      await stopServe(serve);
    }
  });

  it('takes certificate swaps under load (..data symlink swaps and in-place rewrites) without a failed request', { timeout: 60_000 }, async (t) => {
    const volume = new SecretVolume(mkdtempSync(join(dir, 'secret-')));
    volume.write(pairs[0]!);
    const swapped = await serveOn(volume);
    let symlinkSwaps = 0;
    try {
      const load = await underLoad(swapped.port, ca, async (seen) => {
        for (const pair of [pairs[1]!, pairs[2]!, pairs[3]!, pairs[0]!]) {
          volume.write(pair);
          symlinkSwaps++;
          await eventually('new connections seeing the swapped-in certificate', () => seen() === fingerprintOf(pair));
        }
      }, { maxRequests: 20_000 });
      figure(t, `certificate swaps: ${symlinkSwaps} ..data symlink swaps, ${load.succeeded} reviews answered, ${load.failures.length} failed`);
      assert.deepEqual(load.failures, []);
    } finally {
      await stopServe(swapped);
    }

    const files = pairFiles(pairs[0]!);
    const rewritten = await serveOn(files);
    let rewrites = 0;
    try {
      const load = await underLoad(rewritten.port, ca, async (seen) => {
        for (const pair of [pairs[1]!, pairs[2]!, pairs[3]!]) {
          // Cert first, key second, as a person or a script does: the mismatched moment keeps the old pair.
          writeFileSync(files.certFile, pair.certPem);
          writeFileSync(files.keyFile, pair.keyPem);
          rewrites++;
          await eventually('new connections seeing the rewritten certificate', () => seen() === fingerprintOf(pair));
        }
      }, { maxRequests: 20_000 });
      figure(t, `certificate swaps: ${rewrites} in-place rewrites, ${load.succeeded} reviews answered, ${load.failures.length} failed`);
      assert.deepEqual(load.failures, []);
      assert.equal(rewritten.lines.filter((l) => l.msg === 'TLS certificate reloaded').length, rewrites);
    } finally {
      await stopServe(rewritten);
    }
  });

  it('on SIGTERM under load: no in-flight request fails, and serve exits 0 within its grace', { timeout: 60_000 }, async (t) => {
    const GRACE_S = 3;
    const serve = await serveWith(pairs[0]!, '--shutdown-grace', String(GRACE_S));
    let exitS = 0;
    let exit: Awaited<ServeProcess['exit']> | undefined;
    const load = await underLoad(serve.port, ca, async () => {
      await sleep(500);
      const signalled = performance.now();
      serve.child.kill('SIGTERM');
      exit = await serve.exit;
      exitS = (performance.now() - signalled) / 1000;
      // Keep knocking a moment after the exit: those requests are refused, never half-answered.
      await sleep(300);
    }, { maxRequests: 50_000, allowRefused: true });
    // "Refused": connections that never completed TLS, so never sent their review: refused by the closed
    // port, or queued by the kernel but not yet accepted when the port closed (Linux resets those).
    // In a cluster the API server has stopped connecting long before the grace ends.
    figure(t, `SIGTERM under load: ${load.succeeded} reviews answered, ${load.failures.length} failed in flight, ${load.refused} refused before TLS; exit ${exit?.code} after ${exitS.toFixed(1)} s (grace ${GRACE_S} s)`);
    assert.deepEqual(load.failures, []);
    assert.deepEqual(exit, { code: 0, signal: null }, serve.stderr());
    assert.ok(exitS >= GRACE_S && exitS < GRACE_S + 5, `exited after ${exitS} s`);
    assert.ok(load.refused > 0, 'the load ran past the exit');
  });
});
