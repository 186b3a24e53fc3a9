// `lxcfs-webhook certs` as users run it; the rendered self-managed install is checked in test/deploy.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-certs-'));
  dirs.push(dir);
  return dir;
}

describe('lxcfs-webhook certs', () => {
  it('writes a certificate a TLS client trusting only the CA accepts for the Service name', async () => {
    const out = tempDir();
    const result = await runCli([
      'certs',
      '--out',
      out,
      '--namespace',
      'platform',
      '--service',
      'lxcfs',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      statSync(join(out, 'ca.key')).mode & 0o077,
      0,
      'private keys are not group or world readable',
    );
    assert.equal(statSync(join(out, 'tls.key')).mode & 0o077, 0);
    const server = createServer(
      { cert: readFileSync(join(out, 'tls.crt')), key: readFileSync(join(out, 'tls.key')) },
      (_, res) => res.end('ok'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const peer = await new Promise<X509Certificate>((resolve, reject) => {
        const socket = connect(
          {
            host: '127.0.0.1',
            port,
            servername: 'lxcfs.platform.svc',
            ca: readFileSync(join(out, 'ca.crt')),
          },
          () => {
            const cert = socket.getPeerX509Certificate();
            socket.end();
            if (cert) resolve(cert);
            else reject(new Error('no peer certificate'));
          },
        );
        socket.on('error', reject);
      });
      assert.ok(peer.checkHost('lxcfs.platform.svc.cluster.local'));
    } finally {
      server.close();
    }
  });

  it('refuses bad flags with the fix, writing nothing', async () => {
    const out = tempDir();
    const cases: Array<[string[], RegExp]> = [
      [['certs'], /give exactly one of --out DIR \(write files\) and --secret NAME/],
      [['certs', '--out', out, '--secret', 'x'], /give exactly one of --out DIR/],
      [
        ['certs', '--out', out, '--webhook-configuration', 'x'],
        /--webhook-configuration goes with --secret, not --out/,
      ],
      [
        ['certs', '--secret', 'x', '--valid-days', '30', '--renew-before-days', '30'],
        /--renew-before-days \(30\) must be less than --valid-days \(30\)/,
      ],
      [
        ['certs', '--out', out, '--namespace', 'Kube_System'],
        /flag --namespace has value "Kube_System"; expected a Kubernetes name/,
      ],
      [
        ['certs', '--out', out, '--valid-days', '0'],
        /flag --valid-days has value "0"; expected a whole number of days from 1 to 36500/,
      ],
      [
        ['certs', '--out', out, '--bogus'],
        /unknown flag --bogus; see 'lxcfs-webhook certs --help'/,
      ],
      [['certs', '--out', out, '--valid-days', '1e3'], /flag --valid-days has value "1e3"/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, message);
    }
  });

  it('says how to start over when the CA in --out is damaged', async () => {
    const out = tempDir();
    assert.equal((await runCli(['certs', '--out', out])).code, 0);
    writeFileSync(join(out, 'ca.key'), readFileSync(join(out, 'tls.key')));
    const result = await runCli(['certs', '--out', out]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /ca.key is not its key; remove ca.crt and ca.key to start a new CA/,
    );
  });
});
