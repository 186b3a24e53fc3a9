// `lxcfs-webhook serve` as a real process: the try-it-out default, certificate files, signals and
// shutdown, and flag errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createCA, issueServingCert, type IssuedCertificate } from '../../src/certs/authority.js';
import type { KeyPairFiles } from '../../src/admission/tls.js';
import { graceFor } from '../../src/cli/serve.js';
import { DEFAULT_TLS_SERVER_NAME } from '../../src/config/defaults.js';
import { cliPath, readJsonFixture, repoRoot } from '../helpers/paths.js';
import {
  evictedConnections,
  exchange,
  getHealth,
  HOST,
  postRequest,
  rawConnection,
  refusedConnections,
  sampleValue,
  send,
  startServe,
  startServeOn,
  writeKeyPairFiles,
} from '../helpers/webhook.js';
import { waitUntil } from '../helpers/wait.js';

const review = () => readJsonFixture('peers', 'ymping-admissionreview-v1-pod-create.json');

describe('lxcfs-webhook serve', () => {
  let dir: string;
  let ca: string;
  let pair: IssuedCertificate;
  let files: KeyPairFiles;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-serve-'));
    const authority = await createCA({ commonName: 'serve test CA', validDays: 1 });
    ca = authority.certPem;
    pair = await issueServingCert(authority, ['localhost', HOST], { validDays: 1 });
    files = writeKeyPairFiles(dir, pair);
    const expired = await issueServingCert(authority, [DEFAULT_TLS_SERVER_NAME], {
      validDays: 1,
      now: new Date(Date.now() - 3 * 86_400_000),
    });
    writeFileSync(join(dir, 'expired.crt'), expired.certPem);
    writeFileSync(join(dir, 'expired.key'), expired.keyPem);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // curl and jq come from scripts/setup-system.sh, so this never skips.
  it('without TLS flags, prints a command that sends the sample review, and that command works', async () => {
    const serve = await startServe(['--shutdown-grace', '0']);
    try {
      await waitUntil('the banner on stderr', () => serve.stderr().includes('Ctrl-C stops'));
      const commands = serve
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('  curl '))
        .map((l) => l.trim());
      assert.equal(commands.length, 2, serve.stderr());
      const [sendCommand, decodeCommand] = commands as [string, string];
      assert.equal(
        sendCommand,
        `curl -sk -H 'Content-Type: application/json' --data @${join(repoRoot, 'examples', 'admission-review.json')} https://localhost:${serve.port}/mutate`,
      );
      // From another directory than the repository: the path is absolute.
      const sent = spawnSync('sh', ['-c', sendCommand], { cwd: tmpdir(), encoding: 'utf8' });
      assert.equal(sent.status, 0, sent.stderr);
      const answer = JSON.parse(sent.stdout) as {
        response: { allowed: boolean; patchType: string };
      };
      assert.equal(answer.response.allowed, true);
      assert.equal(answer.response.patchType, 'JSONPatch');
      const decoded = spawnSync('sh', ['-c', decodeCommand], { cwd: tmpdir(), encoding: 'utf8' });
      assert.equal(decoded.status, 0, decoded.stderr);
      const patch = JSON.parse(decoded.stdout) as Array<{
        path: string;
        value: { mountPath?: string };
      }>;
      assert.ok(
        patch.some((op) => op.value.mountPath === '/proc/meminfo'),
        decoded.stdout,
      );
      const serving = serve.lines.find((l) => l.msg === 'serving')!;
      assert.equal(serving.tls, 'in-memory self-signed certificate for localhost');
      assert.ok(!serve.stderr().includes('"level"'), 'JSON logs stay on stdout');
    } finally {
      serve.child.kill('SIGTERM');
      assert.deepEqual(await serve.exit, { code: 0, signal: null });
    }
  });

  it('serves the certificate given with --tls-cert and --tls-key', async () => {
    const serve = await startServeOn(files);
    try {
      const reply = await send(serve.port, review(), { ca });
      assert.equal(reply.status, 200);
      assert.equal(reply.fingerprint256, new X509Certificate(pair.certPem).fingerprint256);
      assert.equal(serve.stderr(), '', 'no try-it-out banner with real certificates');
    } finally {
      serve.child.kill('SIGTERM');
      assert.deepEqual(await serve.exit, { code: 0, signal: null });
    }
  });

  it('on SIGTERM: not ready at once, still answers with Connection: close during the grace period, then exits 0', async () => {
    const serve = await startServeOn(files, ['--shutdown-grace', '8']);
    const kept = await rawConnection(serve.port, ca);
    try {
      assert.equal((await getHealth(serve.healthPort, '/readyz')).status, 200);
      const before = await exchange(kept, postRequest(JSON.stringify(review())));
      assert.match(before.head, /^HTTP\/1.1 200/);
      assert.match(before.head, /\r\nConnection: keep-alive/i);

      serve.child.kill('SIGTERM');
      await waitUntil(
        '/readyz answering 503',
        async () => (await getHealth(serve.healthPort, '/readyz')).status === 503,
      );
      assert.equal((await getHealth(serve.healthPort, '/livez')).status, 200);

      const onKept = await exchange(kept, postRequest(JSON.stringify(review())));
      assert.match(onKept.head, /^HTTP\/1.1 200/);
      assert.match(onKept.head, /\r\nConnection: close/i);
      const onNew = await send(serve.port, review(), { ca });
      assert.equal(onNew.status, 200);
      assert.equal(onNew.headers.connection, 'close');

      assert.deepEqual(await serve.exit, { code: 0, signal: null });
      const messages = serve.lines.map((l) => l.msg);
      assert.ok(
        messages.some((m) => m.startsWith('shutting down')),
        messages.join('\n'),
      );
      assert.equal(messages.at(-1), 'stopped');
      assert.equal(serve.lines.find((l) => l.msg.startsWith('shutting down'))?.signal, 'SIGTERM');
    } finally {
      kept.destroy();
      serve.child.kill('SIGKILL');
    }
  });

  it('in the local demo (no --tls-* flags), stops at once on Ctrl-C (SIGINT), not after --shutdown-grace', async () => {
    const serve = await startServe(['--address', HOST, '--shutdown-grace', '3600']);
    try {
      await waitUntil('the banner on stderr', () => serve.stderr().includes('Ctrl-C stops'));
      serve.child.kill('SIGINT');
      const timeout = new Promise((resolve) =>
        setTimeout(resolve, 10_000, 'still running after 10 s').unref(),
      );
      assert.deepEqual(
        await Promise.race([serve.exit, timeout]),
        { code: 0, signal: null },
        'no hour-long drain',
      );
      assert.equal(serve.lines.find((l) => l.msg.startsWith('shutting down'))?.graceSeconds, 0);
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  it('ships the sample review the banner names in the package (npm pack lists it)', () => {
    const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    assert.equal(packed.status, 0, packed.stderr);
    const [pack] = JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>;
    assert.ok(pack?.files.some((f) => f.path === 'examples/admission-review.json'));
  });

  it('still drains on SIGINT with certificate files (a real deployment)', () => {
    assert.equal(graceFor('SIGINT', false, 10_000), 10_000);
    assert.equal(graceFor('SIGTERM', true, 10_000), 10_000, 'SIGTERM always drains');
    assert.equal(graceFor('SIGINT', true, 10_000), 0);
  });

  it('ends the grace period early on a second signal', async () => {
    const serve = await startServe(['--address', HOST, '--shutdown-grace', '3600']);
    try {
      serve.child.kill('SIGTERM');
      await waitUntil('the shutdown log line', () =>
        serve.lines.some((l) => l.msg.startsWith('shutting down')),
      );
      serve.child.kill('SIGINT');
      assert.deepEqual(await serve.exit, { code: 0, signal: null });
      assert.equal(serve.lines.find((l) => l.msg.startsWith('second signal'))?.signal, 'SIGINT');
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  it('with --max-connections 4: a fifth connection is answered, in place of the oldest one that never sent a request', async () => {
    const serve = await startServeOn(files, [
      '--max-connections',
      '4',
      '--max-connections-per-peer',
      '2',
    ]);
    // One after the other, so the table's order is known: two from 127.0.0.10, then two from 127.0.0.11.
    const held: TLSSocket[] = [];
    for (const address of ['127.0.0.10', '127.0.0.10', '127.0.0.11', '127.0.0.11']) {
      held.push(
        (await rawConnection(serve.port, ca, { localAddress: address })).on(
          'error',
          () => undefined,
        ),
      );
    }
    const closed = (i: number) => new Promise((resolve) => held[i]!.once('close', resolve));
    const firstClosed = closed(0);
    const thirdClosed = closed(2);
    try {
      const scrape = async () => (await getHealth(serve.healthPort, '/metrics')).text;
      assert.equal(sampleValue(await scrape(), 'lxcfs_webhook_open_connections'), 4);
      assert.equal((await send(serve.port, review(), { ca })).status, 200);
      await firstClosed;
      const metrics = await scrape();
      assert.equal(evictedConnections(metrics, 'max-connections', 'unfinished'), 1);
      assert.equal(refusedConnections(metrics, 'max-connections'), 0);
      // A third connection from one address, past --max-connections-per-peer 2, replaces that address's oldest.
      const third = await rawConnection(serve.port, ca, { localAddress: '127.0.0.11' });
      held.push(third);
      assert.match(
        (await exchange(third, postRequest(JSON.stringify(review())))).head,
        /^HTTP\/1.1 200/,
      );
      await thirdClosed;
      assert.equal(evictedConnections(await scrape(), 'peer-limit', 'unfinished'), 1);
      const serving = serve.lines.find((l) => l.msg === 'serving');
      assert.deepEqual([serving?.maxConnections, serving?.maxConnectionsPerPeer], [4, 2]);
    } finally {
      for (const socket of held) socket.destroy();
      serve.child.kill('SIGTERM');
      assert.deepEqual(await serve.exit, { code: 0, signal: null });
    }
  });

  it('exits 2 with a message naming the flag when a flag is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--port', 'https'], /--port has value "https"; expected a port number/],
      [['--port', '70000'], /--port has value "70000"/],
      [['--health-port=-1'], /--health-port has value "-1"/],
      [['--port', '9443', '--health-port', '9443'], /--port and --health-port are both 9443/],
      [['--port'], /flag --port needs a value/],
      [['--tls-cert', join(dir, 'tls.crt')], /--tls-cert is set but --tls-key is not; pass both/],
      [['--tls-key', join(dir, 'tls.key')], /--tls-key is set but --tls-cert is not/],
      [
        ['--tls-cert', join(dir, 'nope.crt'), '--tls-key', join(dir, 'tls.key')],
        /--tls-cert: the certificate file ".*nope.crt" does not exist/,
      ],
      [
        ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.crt')],
        /--tls-key: the key file ".*tls.crt" holds no PEM private key/,
      ],
      // The default name is the install's Service; this certificate is for localhost only.
      [
        ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')],
        /--tls-server-name: the certificate file ".*tls.crt" is for DNS:localhost, IP Address:127.0.0.1, not "lxcfs-webhook.lxcfs.svc", the name the API server checks/,
      ],
      [
        ['--tls-cert', join(dir, 'expired.crt'), '--tls-key', join(dir, 'expired.key')],
        /--tls-cert: the certificate file ".*expired.crt" expired at \d{4}-.*; issue a new one \(cert-manager: see `kubectl describe certificate`/,
      ],
      [
        ['--tls-server-name', 'Webhook_Service'],
        /--tls-server-name has value "Webhook_Service"; expected a DNS name/,
      ],
      [
        ['--max-request-bytes-in-flight', '1Mi'],
        /--max-request-bytes-in-flight \(1048576\) is below --max-request-bytes \(8388608\)/,
      ],
      [['--files', 'meminfo,pressure'], /--files has value "meminfo,pressure"/],
      [['--lxcfs-root', 'var/lib/lxcfs'], /--lxcfs-root has value "var\/lib\/lxcfs"/],
      [
        ['--max-request-bytes', '100'],
        /--max-request-bytes has value "100"; expected a size from 64Ki/,
      ],
      [['--max-request-bytes', '8MB'], /--max-request-bytes has value "8MB"/],
      [['--shutdown-grace', 'soon'], /flag --shutdown-grace has value "soon"; expected a duration/],
      [['--shutdown-grace', '61m'], /flag --shutdown-grace has value "61m"/],
      [
        ['--port', '0x1f91'],
        /flag --port has value "0x1f91"; expected a port number from 0 to 65535, in decimal/,
      ],
      [['--address', ''], /flag --address has value ""; expected an IP address or host name/],
      [
        ['--max-connections', '0'],
        /flag --max-connections has value "0"; expected a whole number of connections from 1 to 65536/,
      ],
      [['--max-connections', 'lots'], /flag --max-connections has value "lots"/],
      [
        ['--max-connections-per-peer', '0'],
        /flag --max-connections-per-peer has value "0"; expected a whole number of connections from 1/,
      ],
      [
        ['--client-ca', join(dir, 'nope.crt')],
        /--client-ca: the client CA file ".*nope.crt" does not exist/,
      ],
      [
        ['--client-ca', join(dir, 'tls.key')],
        /--client-ca: the client CA file ".*tls.key" holds no PEM certificate/,
      ],
      [
        ['--client-ca', join(dir, 'tls.crt')],
        /--client-ca: the client CA file ".*tls.crt" holds "CN=.*", which is not a CA certificate/,
      ],
      [['--tls'], /unknown flag --tls; see 'lxcfs-webhook serve --help'/],
      [['now'], /unexpected argument "now"/],
    ];
    for (const [args, message] of cases) {
      const run = spawnSync(process.execPath, [cliPath, 'serve', ...args], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
    }
  });

  it('exits 2 naming --port when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, HOST, resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const run = spawnSync(
        process.execPath,
        [cliPath, 'serve', '--address', HOST, '--port', String(port), '--health-port', '0'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(run.status, 2, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`--port: HTTPS port ${port} on address ${HOST} is in use by another process`),
      );
    } finally {
      taken.close();
    }
  });
});
