// A small certificate authority: makes a CA and issues ECDSA P-256 serving certificates signed by it.
// `serve` uses it for its in-memory localhost certificate; `certs` writes the same to files for a
// cluster, where the CA goes into the webhook configuration's caBundle.
import 'reflect-metadata'; // @peculiar/x509 resolves its algorithms through tsyringe, which needs it
import * as x509 from '@peculiar/x509';
import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { CERT_CLOCK_SKEW_MS, DEFAULT_SERVING_CERT_VALID_DAYS } from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';

x509.cryptoProvider.set(webcrypto as Crypto);

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface CertificateAuthority {
  cert: x509.X509Certificate;
  signingKey: CryptoKey;
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export interface ValidityOptions {
  validDays: number;
  /** Defaults to now; tests issue certificates that are already expired. */
  now?: Date;
}

function validity({ validDays, now = new Date() }: ValidityOptions): {
  notBefore: Date;
  notAfter: Date;
} {
  return {
    notBefore: new Date(now.getTime() - CERT_CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + validDays * DAY_MS),
  };
}

/** A random positive 128-bit serial (the top bit cleared: DER integers are signed). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, [
    'sign',
    'verify',
  ]) as Promise<CryptoKeyPair>;
}

function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

export async function createCA(
  options: { commonName: string } & ValidityOptions,
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: new x509.Name([{ CN: [options.commonName] }]),
    ...validity(options),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert,
    signingKey: keys.privateKey,
    certPem: cert.toString('pem'),
    keyPem: privateKeyPem(keys.privateKey),
  };
}

/**
 * Reads back a CA written earlier (its certificate and PKCS#8 key), so a rotation keeps the same CA and
 * the caBundle the API server trusts does not change.
 */
export async function loadCA(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const fix = 'remove ca.crt and ca.key to start a new CA (then re-apply the caBundle patch)';
  let checked: X509Certificate;
  let key: KeyObject;
  try {
    checked = new X509Certificate(certPem);
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new LxcfsWebhookError(
      'E_TLS',
      `the CA certificate or key cannot be read (${(err as Error).message}); ${fix}`,
      { cause: err },
    );
  }
  if (!checked.ca || !checked.checkPrivateKey(key)) {
    throw new LxcfsWebhookError(
      'E_TLS',
      `ca.crt is not a CA certificate or ca.key is not its key; ${fix}`,
    );
  }
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, true, ['sign']);
  return { cert: new x509.X509Certificate(certPem), signingKey, certPem, keyPem };
}

/**
 * A server certificate for `names` (DNS names and IP addresses, e.g. `svc.ns.svc` and `127.0.0.1`),
 * signed by `ca`. The first name is also the subject's common name, for people reading it.
 */
export async function issueServingCert(
  ca: CertificateAuthority,
  names: readonly string[],
  options: ValidityOptions = { validDays: DEFAULT_SERVING_CERT_VALID_DAYS },
): Promise<IssuedCertificate> {
  if (names.length === 0)
    throw new LxcfsWebhookError(
      'E_CONFIG',
      'a serving certificate needs at least one DNS name or IP address',
    );
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: new x509.Name([{ CN: [names[0]!] }]),
    issuer: ca.cert.subjectName,
    ...validity(options),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((name): x509.JsonGeneralName => ({
          type: isIP(name) ? 'ip' : 'dns',
          value: name,
        })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privateKeyPem(keys.privateKey) };
}
