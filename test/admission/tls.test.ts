// The serving certificate: refused at start-up with a message that names the file, and replaced while
// clients keep sending, the way Kubernetes (symlink swap) and people (in-place rewrite) change it.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadKeyPair } from '../../src/admission/tls.js';
import { startWebhook } from '../../src/admission/webhook.js';
import {
  createCA,
  issueServingCert,
  type CertificateAuthority,
  type IssuedCertificate,
} from '../../src/certs/authority.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
} from '../../src/config/defaults.js';
import { defaultSettings } from '../../src/inject/settings.js';
import { LxcfsWebhookError } from '../../src/errors.js';
import { readJsonFixture } from '../helpers/paths.js';
import { HOST, memoryLogger, SecretVolume, send, underLoad } from '../helpers/webhook.js';
import { errMessage, type LogLine } from '../helpers/log-lines.js';
import { waitUntil } from '../helpers/wait.js';

const review = () => readJsonFixture('peers', 'ymping-admissionreview-v1-pod-create.json');
const fingerprintOf = (pair: IssuedCertificate) => new X509Certificate(pair.certPem).fingerprint256;

describe('TLS certificate files', () => {
  let ca: CertificateAuthority;
  let pairs: IssuedCertificate[];
  let dir: string;

  before(async () => {
    ca = await createCA({ commonName: 'test CA', validDays: 1 });
    pairs = await Promise.all(
      [0, 1, 2].map(() => issueServingCert(ca, ['localhost', HOST], { validDays: 1 })),
    );
    dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-tls-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function tlsError(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof LxcfsWebhookError && err.code === 'E_TLS', String(err));
      return err.message;
    }
    return assert.fail('expected an E_TLS error');
  }

  it('refuses a missing, unreadable, non-PEM or mismatched pair, naming the file and the fix', () => {
    const good = pairs[0]!;
    const file = (name: string, content: string) => {
      writeFileSync(join(dir, name), content);
      return join(dir, name);
    };
    const cert = file('good.crt', good.certPem);
    const key = file('good.key', good.keyPem);
    assert.equal(loadKeyPair({ certFile: cert, keyFile: key }).fingerprint256, fingerprintOf(good));

    assert.match(
      tlsError(() => loadKeyPair({ certFile: join(dir, 'absent.crt'), keyFile: key })),
      /^the certificate file ".*absent.crt" does not exist; it must hold a PEM certificate chain/,
    );
    assert.match(
      tlsError(() => loadKeyPair({ certFile: dir, keyFile: key })),
      /^the certificate file ".*" cannot be read \(EISDIR\)/,
    );
    assert.match(
      tlsError(() => loadKeyPair({ certFile: file('text.crt', 'hello'), keyFile: key })),
      /^the certificate file ".*text.crt" holds no PEM certificate/,
    );
    assert.match(
      tlsError(() => loadKeyPair({ certFile: cert, keyFile: file('cert-as.key', good.certPem) })),
      /^the key file ".*cert-as.key" holds no PEM private key .*; it must hold the PEM private key of that certificate/,
    );
    assert.match(
      tlsError(() => loadKeyPair({ certFile: cert, keyFile: file('other.key', pairs[1]!.keyPem) })),
      /^the key file ".*other.key" is not the key of the certificate file ".*good.crt"/,
    );
  });

  /** Starts the webhook on `volume`'s files; `pollIntervalMs` huge means only the directory watch can notice. */
  async function serve(certFile: string, keyFile: string, pollIntervalMs: number) {
    const { logger, lines } = memoryLogger();
    const webhook = await startWebhook({
      port: 0,
      healthPort: 0,
      address: HOST,
      tls: { files: { certFile, keyFile } },
      settings: defaultSettings,
      maxRequestBytes: 1024 * 1024,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      maxConnectionsPerPeer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
      logger,
      tlsPollIntervalMs: pollIntervalMs,
    });
    return { webhook, lines };
  }

  const HOUR = 3_600_000;
  const warned = (lines: LogLine[]) =>
    lines.some((l) => l.level === 'warn' && /keeping the current certificate/.test(l.msg));

  it('takes a Secret volume update (..data symlink swap) under load: no failed request, new connections get the new certificate', async () => {
    const volume = new SecretVolume(mkdtempSync(join(dir, 'secret-')));
    volume.write(pairs[0]!);
    const { webhook, lines } = await serve(volume.certFile, volume.keyFile, HOUR);
    try {
      const load = await underLoad(webhook.port, ca.certPem, async (seen) => {
        assert.equal(seen(), fingerprintOf(pairs[0]!));
        volume.write(pairs[1]!);
        await waitUntil(
          'new connections see the second certificate',
          () => seen() === fingerprintOf(pairs[1]!),
        );
        volume.write(pairs[2]!);
        await waitUntil(
          'new connections see the third certificate',
          () => seen() === fingerprintOf(pairs[2]!),
        );
      });
      assert.deepEqual(load.failures, []);
      assert.ok(load.succeeded > 20);
      assert.equal(lines.filter((l) => l.msg === 'TLS certificate reloaded').length, 2);
      assert.equal(webhook.keyPair().fingerprint256, fingerprintOf(pairs[2]!));
    } finally {
      await webhook.stop();
    }
  });

  it('keeps the current certificate while an in-place rewrite has the new cert but the old key, then takes the pair', async () => {
    const certFile = join(dir, 'inplace.crt');
    const keyFile = join(dir, 'inplace.key');
    writeFileSync(certFile, pairs[0]!.certPem);
    writeFileSync(keyFile, pairs[0]!.keyPem);
    const { webhook, lines } = await serve(certFile, keyFile, HOUR);
    try {
      const load = await underLoad(webhook.port, ca.certPem, async (seen) => {
        writeFileSync(certFile, pairs[1]!.certPem);
        await waitUntil('a warning about the mismatched pair', () => warned(lines));
        const reply = await send(webhook.port, review(), { ca: ca.certPem });
        assert.equal(reply.fingerprint256, fingerprintOf(pairs[0]!));
        writeFileSync(keyFile, pairs[1]!.keyPem);
        await waitUntil(
          'new connections see the new certificate',
          () => seen() === fingerprintOf(pairs[1]!),
        );
      });
      assert.deepEqual(load.failures, []);
      const warning = lines.find((l) => l.level === 'warn');
      assert.match(errMessage(warning), /is not the key of the certificate/);
    } finally {
      await webhook.stop();
    }
  });

  it('keeps the current certificate when the new file is half-written, and says so once', async () => {
    const certFile = join(dir, 'half.crt');
    const keyFile = join(dir, 'half.key');
    writeFileSync(certFile, pairs[0]!.certPem);
    writeFileSync(keyFile, pairs[0]!.keyPem);
    const { webhook, lines } = await serve(certFile, keyFile, HOUR);
    try {
      writeFileSync(certFile, pairs[1]!.certPem.slice(0, pairs[1]!.certPem.length / 2));
      await waitUntil('a warning about the half-written certificate', () => warned(lines));
      const reply = await send(webhook.port, review(), { ca: ca.certPem });
      assert.equal(reply.status, 200);
      assert.equal(reply.fingerprint256, fingerprintOf(pairs[0]!));
      // Touching the same broken content again does not repeat the warning.
      writeFileSync(certFile, pairs[1]!.certPem.slice(0, pairs[1]!.certPem.length / 2));
      await sleep(500);
      assert.equal(lines.filter((l) => l.level === 'warn').length, 1);
      assert.match(errMessage(lines.find((l) => l.level === 'warn')), /holds no PEM certificate/);
    } finally {
      await webhook.stop();
    }
  });

  it('notices by polling a change the directory watch cannot see (files symlinked from elsewhere)', async () => {
    const watched = mkdtempSync(join(dir, 'links-'));
    const elsewhere = mkdtempSync(join(dir, 'targets-'));
    writeFileSync(join(elsewhere, 'tls.crt'), pairs[0]!.certPem);
    writeFileSync(join(elsewhere, 'tls.key'), pairs[0]!.keyPem);
    symlinkSync(join(elsewhere, 'tls.crt'), join(watched, 'tls.crt'));
    symlinkSync(join(elsewhere, 'tls.key'), join(watched, 'tls.key'));
    const { webhook } = await serve(join(watched, 'tls.crt'), join(watched, 'tls.key'), 500);
    try {
      writeFileSync(join(elsewhere, 'tls.crt'), pairs[1]!.certPem);
      writeFileSync(join(elsewhere, 'tls.key'), pairs[1]!.keyPem);
      await waitUntil(
        'the new certificate after a poll',
        async () =>
          (await send(webhook.port, review(), { ca: ca.certPem })).fingerprint256 ===
          fingerprintOf(pairs[1]!),
      );
    } finally {
      await webhook.stop();
    }
  });
});
