// What `certs --secret` decides (src/certs/secret.ts), on certificates made for the case: create, keep,
// renew the serving certificate, renew the CA, refuse a Secret it did not make or a damaged CA, and the
// caBundle during and after a switch.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import {
  caBundleFor,
  decide,
  type CertsSettings,
  type SecretLike,
} from '../../src/certs/secret.js';
import { CERTS_SECRET_LABEL } from '../../src/config/defaults.js';
import { LxcfsWebhookError } from '../../src/errors.js';

const DAY = 86_400_000;
const now = new Date();
const settings: CertsSettings = {
  secret: 's',
  namespace: 'lxcfs',
  dnsNames: [
    'lxcfs-webhook',
    'lxcfs-webhook.lxcfs',
    'lxcfs-webhook.lxcfs.svc',
    'lxcfs-webhook.lxcfs.svc.cluster.local',
  ],
  validDays: 365,
  caValidDays: 3650,
  renewBeforeDays: 30,
  now,
};
const b64 = (s: string) => Buffer.from(s).toString('base64');
const cert = (data: Record<string, string>, key: string) =>
  new X509Certificate(Buffer.from(data[key]!, 'base64'));

/** A Secret as certs makes it, with the CA and serving certificate issued at the given times. */
async function secret(
  o: {
    caIssued?: Date;
    caDays?: number;
    servingIssued?: Date;
    servingDays?: number;
    names?: string[];
    label?: boolean;
  } = {},
): Promise<SecretLike> {
  const ca = await createCA({
    commonName: 'ca',
    validDays: o.caDays ?? 3650,
    now: o.caIssued ?? now,
  });
  const serving = await issueServingCert(ca, o.names ?? settings.dnsNames, {
    validDays: o.servingDays ?? 365,
    now: o.servingIssued ?? now,
  });
  return {
    metadata: {
      name: 's',
      labels: o.label === false ? {} : { [CERTS_SECRET_LABEL.key]: CERTS_SECRET_LABEL.value },
    },
    data: {
      'tls.crt': b64(serving.certPem),
      'tls.key': b64(serving.keyPem),
      'ca.crt': b64(ca.certPem),
      'ca.key': b64(ca.keyPem),
    },
  };
}

describe('certs --secret decides', () => {
  it('create: a CA and a serving certificate for every DNS name of the Service, signed by it', async () => {
    const d = await decide(undefined, settings);
    assert.equal(d.action, 'create');
    const served = cert(d.data as any, 'tls.crt');
    assert.ok(served.verify(cert(d.data as any, 'ca.crt').publicKey));
    for (const name of settings.dnsNames) assert.equal(served.checkHost(name), name);
  });
  it('keep: a good pair is left as it is', async () => {
    const s = await secret();
    const d = await decide(s, settings);
    assert.equal(d.action, 'keep');
    assert.deepEqual(d.data, s.data);
  });
  it('renew-serving: fewer days left than renewBeforeDays, or a name missing; the CA stays', async () => {
    for (const s of [
      await secret({ servingIssued: new Date(now.getTime() - 340 * DAY) }),
      await secret({ names: ['lxcfs-webhook.other.svc'] }),
    ]) {
      const d = await decide(s, settings);
      assert.equal(d.action, 'renew-serving', d.reason);
      assert.equal(d.data['ca.crt'], s.data!['ca.crt']);
      assert.ok(Date.parse(cert(d.data as any, 'tls.crt').validTo) > now.getTime() + 360 * DAY);
    }
  });
  it('renew-ca: the CA itself close to expiry', async () => {
    const s = await secret({ caIssued: new Date(now.getTime() - 3630 * DAY) });
    const d = await decide(s, settings);
    assert.equal(d.action, 'renew-ca');
    assert.notEqual(d.data['ca.crt'], s.data!['ca.crt']);
  });
  it('refuses a Secret it did not make, and a damaged CA, saying what to do', async () => {
    await assert.rejects(
      decide(await secret({ label: false }), settings),
      (err: LxcfsWebhookError) =>
        err.code === 'E_CONFIG' &&
        /was not made by lxcfs-webhook certs .* it is never taken over: delete it, or give --secret another name/.test(
          err.message,
        ),
    );
    const damaged = await secret();
    damaged.data!['ca.key'] = damaged.data!['tls.key']!;
    await assert.rejects(
      decide(damaged, settings),
      (err: LxcfsWebhookError) =>
        err.code === 'E_TLS' && /delete the Secret and run again/.test(err.message),
    );
  });
});

describe('the caBundle certs --secret writes', () => {
  it('a young serving certificate: our CA plus the unexpired CAs the webhooks trust now, once each', async () => {
    const ours = await secret();
    const other = await createCA({ commonName: 'other', validDays: 30 });
    const expired = await createCA({
      commonName: 'expired',
      validDays: 1,
      now: new Date(now.getTime() - 3 * DAY),
    });
    const bundle = caBundleFor(
      ours.data as any,
      [b64(other.certPem), b64(other.certPem + expired.certPem), ours.data!['ca.crt']!],
      now,
    );
    const pems = Buffer.from(bundle, 'base64')
      .toString()
      .match(/-----BEGIN CERTIFICATE-----/g);
    assert.equal(pems?.length, 2, 'ours and the other one; not the expired one, nothing twice');
  });
  it('a serving certificate older than a day: our CA alone', async () => {
    const ours = await secret({ servingIssued: new Date(now.getTime() - 2 * DAY) });
    const other = await createCA({ commonName: 'other', validDays: 30 });
    assert.equal(
      caBundleFor(ours.data as any, [b64(other.certPem)], now),
      b64(Buffer.from(ours.data!['ca.crt']!, 'base64').toString().trim() + '\n'),
    );
  });
});
