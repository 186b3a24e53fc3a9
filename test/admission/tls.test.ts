// The serving certificate: refused at start-up with a message that names the file, and replaced while
// clients keep sending, the way Kubernetes (symlink swap) and people (in-place rewrite) change it.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { expiresSoon, expiryWarningMs, loadKeyPair } from '../../src/admission/tls.js';
import { startWebhook } from '../../src/admission/webhook.js';
import {
  createCA,
  issueServingCert,
  type CertificateAuthority,
  type IssuedCertificate,
} from '../../src/certs/authority.js';
import {
  CERT_CLOCK_SKEW_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
} from '../../src/config/defaults.js';
import { defaultSettings } from '../../src/inject/settings.js';
import { LxcfsWebhookError, TlsProblem } from '../../src/errors.js';
import { readJsonFixture } from '../helpers/paths.js';
import {
  HOST,
  memoryLogger,
  sampleValue,
  SecretVolume,
  send,
  underLoad,
} from '../helpers/webhook.js';
import { errMessage, type LogLine } from '../helpers/log-lines.js';
import { waitUntil } from '../helpers/wait.js';

const review = () => readJsonFixture('peers', 'ymping-admissionreview-v1-pod-create.json');
const fingerprintOf = (pair: IssuedCertificate) => new X509Certificate(pair.certPem).fingerprint256;
const DAY = 86_400_000;

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

  it('refuses at start-up an expired, not-yet-valid, wrong-name or oversized certificate, saying what to do', async () => {
    const write = (name: string, pair: IssuedCertificate, extraCerts = '') => {
      writeFileSync(join(dir, `${name}.crt`), `${pair.certPem}\n${extraCerts}`);
      writeFileSync(join(dir, `${name}.key`), pair.keyPem);
      return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
    };
    const checks = { serverName: 'localhost' };
    const problem = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof TlsProblem, String(err));
        return { reason: err.reason, setting: err.setting, message: err.message };
      }
      return assert.fail('expected a TlsProblem');
    };
    const expired = write(
      'expired',
      await issueServingCert(ca, ['localhost'], {
        validDays: 1,
        now: new Date(Date.now() - 2 * DAY),
      }),
    );
    assert.deepEqual(
      problem(() => loadKeyPair(expired, checks)),
      {
        reason: 'expired',
        setting: 'certFile',
        message:
          `the certificate file "${expired.certFile}" expired at ${new Date(new X509Certificate(readFileSync(expired.certFile)).validTo).toISOString()}; ` +
          'issue a new one (cert-manager: see `kubectl describe certificate`; `lxcfs-webhook certs`: run it again and apply its Secret)',
      },
    );
    const early = write(
      'early',
      await issueServingCert(ca, ['localhost'], { validDays: 1, now: new Date(Date.now() + DAY) }),
    );
    assert.match(
      problem(() => loadKeyPair(early, checks)).message,
      /^the certificate file ".*early.crt" is not valid before \S+ \(it is \S+ here\): the clocks of this node and of the issuer disagree/,
    );
    const good = write('good-name', pairs[0]!);
    assert.deepEqual(
      problem(() => loadKeyPair(good, { serverName: 'lxcfs-webhook.lxcfs.svc' })).reason,
      'wrong-name',
    );
    assert.equal(
      problem(() => loadKeyPair(good, { serverName: 'lxcfs-webhook.lxcfs.svc' })).setting,
      'serverName',
    );
    assert.equal(problem(() => loadKeyPair(good, { serverName: '10.0.0.1' })).reason, 'wrong-name');
    assert.equal(
      loadKeyPair(good, { serverName: HOST }).fingerprint256,
      fingerprintOf(pairs[0]!),
      'an IP address is checked against IP SANs',
    );
    // Go's rules: a wildcard stands for exactly one first label; the subject CN is never looked at.
    const wildcard = write(
      'wildcard',
      await issueServingCert(ca, ['*.lxcfs.svc'], { validDays: 1 }),
    );
    assert.ok(loadKeyPair(wildcard, { serverName: 'lxcfs-webhook.lxcfs.svc' }));
    assert.equal(
      problem(() => loadKeyPair(wildcard, { serverName: 'a.lxcfs-webhook.lxcfs.svc' })).reason,
      'wrong-name',
    );
    // A chain of 300 certificates (~150 KB DER): more than a TLS client takes in one handshake.
    const huge = write('huge', pairs[0]!, `${ca.certPem}\n`.repeat(300));
    assert.match(
      problem(() => loadKeyPair(huge, checks)).message,
      /^the certificate file ".*huge.crt" holds 301 certificates, \d+ bytes \(DER\): over 61440, more than TLS clients take in one handshake/,
    );
    // The leaf plus a real-sized chain is fine.
    assert.ok(loadKeyPair(write('chain', pairs[0]!, ca.certPem), checks));
  });

  it('warns about a certificate that expires soon: a sixth of its lifetime before its end, at most 30 days', async () => {
    const at = (days: number) => ({ notBefore: new Date(0), notAfter: new Date(days * DAY) });
    assert.equal(
      expiryWarningMs(at(90)),
      15 * DAY,
      'a 90-day cert-manager certificate: 15 days, half way past its renewal',
    );
    assert.equal(expiryWarningMs(at(365)), 30 * DAY);
    assert.equal(expiryWarningMs(at(1)), DAY / 6, 'a one-day certificate: 4 hours');
    assert.equal(expiresSoon(at(90), new Date(74 * DAY)), undefined);
    assert.match(
      expiresSoon(at(90), new Date(80 * DAY)) ?? '',
      /^the TLS certificate in use expires in 10\.0 days \(1970-04-01T00:00:00.000Z\) and has not been renewed; issue a new one/,
    );
    assert.match(
      expiresSoon(at(90), new Date(91 * DAY)) ?? '',
      /^the TLS certificate in use expired at 1970-04-01T00:00:00.000Z: the API server refuses it/,
    );

    // At start-up, in the log: a day-long certificate with an hour left.
    const files = { certFile: join(dir, 'soon.crt'), keyFile: join(dir, 'soon.key') };
    const soon = await issueServingCert(ca, ['localhost'], {
      validDays: 1,
      now: new Date(Date.now() - 23 * 3_600_000),
    });
    writeFileSync(files.certFile, soon.certPem);
    writeFileSync(files.keyFile, soon.keyPem);
    const { webhook, lines } = await serve(files.certFile, files.keyFile, HOUR);
    try {
      assert.match(
        lines.find((l) => l.level === 'warn')?.msg ?? '',
        /^the TLS certificate in use expires in 0\.0 days/,
      );
      const left = sampleValue(
        await webhook.metrics.registry.metrics(),
        'lxcfs_webhook_certificate_expiry_seconds',
      );
      assert.ok(left > 3000 && left <= 3600, `certificate_expiry_seconds ${left}`);
    } finally {
      await webhook.stop();
    }
  });

  it('at rotation, keeps serving the current certificate when the new one is expired, not yet valid, for another name or too large', async () => {
    const volume = new SecretVolume(mkdtempSync(join(dir, 'bad-rotation-')));
    volume.write(pairs[0]!);
    const { webhook, lines } = await serve(volume.certFile, volume.keyFile, 500);
    const metric = async (sample: string) =>
      sampleValue(await webhook.metrics.registry.metrics(), sample);
    try {
      const bad: Array<[string, IssuedCertificate]> = [
        [
          'expired',
          await issueServingCert(ca, ['localhost', HOST], {
            validDays: 1,
            now: new Date(Date.now() - 2 * DAY),
          }),
        ],
        [
          'not-yet-valid',
          await issueServingCert(ca, ['localhost', HOST], {
            validDays: 1,
            now: new Date(Date.now() + DAY),
          }),
        ],
        ['wrong-name', await issueServingCert(ca, ['other.lxcfs.svc'], { validDays: 1 })],
        [
          'chain-too-large',
          { ...pairs[1]!, certPem: `${pairs[1]!.certPem}\n${`${ca.certPem}\n`.repeat(300)}` },
        ],
      ];
      for (const [reason, pair] of bad) {
        volume.write(pair);
        await waitUntil(`a warning about the ${reason} certificate`, () =>
          lines.some((l) => l.level === 'warn' && l.reason === reason),
        );
        assert.equal(
          (await send(webhook.port, review(), { ca: ca.certPem })).fingerprint256,
          fingerprintOf(pairs[0]!),
          `${reason}: old certificate served`,
        );
        assert.equal(
          await metric(`lxcfs_webhook_tls_reloads_total{result="rejected",reason="${reason}"}`),
          1,
        );
        assert.equal(await metric('lxcfs_webhook_tls_files_rejected'), 1);
      }
      const warning = lines.find((l) => l.reason === 'wrong-name')!;
      assert.equal(
        warning.msg,
        'changed TLS files are not served; keeping the current certificate',
      );
      assert.match(
        errMessage(warning),
        /is for DNS:other.lxcfs.svc, not "localhost", the name the API server checks/,
      );
      assert.equal(warning.servedFingerprint256, fingerprintOf(pairs[0]!));
      // The polls that re-read the same refused files stay silent.
      assert.equal(lines.filter((l) => l.level === 'warn').length, bad.length);

      volume.write(pairs[2]!);
      await waitUntil(
        'the good certificate served',
        async () =>
          (await send(webhook.port, review(), { ca: ca.certPem })).fingerprint256 ===
          fingerprintOf(pairs[2]!),
      );
      assert.equal(await metric('lxcfs_webhook_tls_files_rejected'), 0);
      assert.equal(await metric('lxcfs_webhook_tls_reloads_total{result="loaded",reason=""}'), 1);
    } finally {
      await webhook.stop();
    }
  });

  it('takes a certificate issued for a moment ahead once that moment comes', async () => {
    const volume = new SecretVolume(mkdtempSync(join(dir, 'ahead-')));
    volume.write(pairs[0]!);
    const { webhook, lines } = await serve(volume.certFile, volume.keyFile, 500);
    try {
      // notBefore is CERT_CLOCK_SKEW_MS before `now`: 3 s from now.
      const ahead = await issueServingCert(ca, ['localhost', HOST], {
        validDays: 1,
        now: new Date(Date.now() + CERT_CLOCK_SKEW_MS + 3_000),
      });
      volume.write(ahead);
      await waitUntil('the early certificate refused', () =>
        lines.some((l) => l.reason === 'not-yet-valid'),
      );
      await waitUntil(
        'the certificate served once valid',
        async () =>
          (await send(webhook.port, review(), { ca: ca.certPem })).fingerprint256 ===
          fingerprintOf(ahead),
      );
    } finally {
      await webhook.stop();
    }
  });

  /** Starts the webhook on `volume`'s files; `pollIntervalMs` huge means only the directory watch can notice. */
  async function serve(certFile: string, keyFile: string, pollIntervalMs: number) {
    const { logger, lines } = memoryLogger();
    const webhook = await startWebhook({
      port: 0,
      healthPort: 0,
      address: HOST,
      tls: { files: { certFile, keyFile }, serverName: 'localhost' },
      settings: defaultSettings,
      maxRequestBytes: 1024 * 1024,
      maxRequestBytesInFlight: 8 * 1024 * 1024,
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
