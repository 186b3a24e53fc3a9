// The certificate authority, checked with Node's own X.509 parser and a real verified TLS handshake,
// the way the API server will check the serving certificate against the caBundle.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:tls';
import { before, describe, it } from 'node:test';
import {
  createCA,
  issueServingCert,
  type CertificateAuthority,
  type IssuedCertificate,
} from '../../src/certs/authority.js';
// After authority.js, which loads the reflect-metadata polyfill @peculiar/x509 needs.
import * as x509 from '@peculiar/x509';

const SERVICE_NAMES = [
  'lxcfs-webhook.lxcfs-webhook.svc',
  'lxcfs-webhook.lxcfs-webhook.svc.cluster.local',
  '10.96.0.10',
];

describe('certificate authority', () => {
  let ca: CertificateAuthority;
  let issued: IssuedCertificate;

  before(async () => {
    ca = await createCA({ commonName: 'lxcfs-webhook test CA', validDays: 10 });
    issued = await issueServingCert(ca, SERVICE_NAMES, { validDays: 5 });
  });

  it('makes a self-signed CA that may sign certificates and nothing below them', () => {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, 'CN=lxcfs-webhook test CA');
    assert.ok(cert.checkIssued(cert));
    assert.ok(cert.verify(cert.publicKey));
    assert.ok(cert.checkPrivateKey(createPrivateKey(ca.keyPem)));
    const constraints = ca.cert.getExtension(x509.BasicConstraintsExtension);
    assert.equal(constraints?.critical, true);
    assert.equal(constraints?.pathLength, 0);
    const usages = ca.cert.getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
    assert.equal(usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  });

  it('issues an ECDSA P-256 serving certificate for DNS names and IPs, signed by the CA', () => {
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(cert.checkPrivateKey(createPrivateKey(issued.keyPem)));
    assert.equal(
      cert.subjectAltName,
      'DNS:lxcfs-webhook.lxcfs-webhook.svc, DNS:lxcfs-webhook.lxcfs-webhook.svc.cluster.local, IP Address:10.96.0.10',
    );
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 4.9 && days <= 5, `valid for ${days} days`);
    assert.ok(
      Date.parse(cert.validFrom) < Date.now(),
      'valid from a little before now, for clock skew',
    );
  });

  it('serves TLS that a client trusting only the CA verifies for the Service name', async () => {
    const server = createServer({ cert: issued.certPem, key: issued.keyPem }, (socket) =>
      socket.end('ok'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const socket = connect({
        host: '127.0.0.1',
        port,
        ca: ca.certPem,
        servername: SERVICE_NAMES[0],
      });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true);
      socket.destroy();

      const wrongName = connect({
        host: '127.0.0.1',
        port,
        ca: ca.certPem,
        servername: 'other.example.svc',
      });
      const [error] = (await once(wrongName, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      server.close();
    }
  });

  it('refuses to issue a certificate without a name', async () => {
    await assert.rejects(issueServingCert(ca, []), /at least one DNS name or IP address/);
  });
});
