// The certificate `serve` uses when given no certificate files: made in memory for this run only, for
// trying the webhook on one machine (curl -k). A cluster needs real files: the API server must trust
// the CA named in the webhook configuration's caBundle.
import { createCA, issueServingCert } from '../certs/authority.js';
import { LOCALHOST_CERT_VALID_DAYS } from '../config/defaults.js';
import { parseKeyPair, type KeyPair } from './tls.js';

export const LOCALHOST_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

export interface LocalCertificate {
  keyPair: KeyPair;
  /** PEM of the throwaway CA that signed it, for clients that want to verify rather than use -k. */
  caCertPem: string;
}

export async function localhostCertificate(): Promise<LocalCertificate> {
  const ca = await createCA({
    commonName: 'lxcfs-webhook in-memory CA',
    validDays: LOCALHOST_CERT_VALID_DAYS,
  });
  const issued = await issueServingCert(ca, LOCALHOST_NAMES, {
    validDays: LOCALHOST_CERT_VALID_DAYS,
  });
  const keyPair = parseKeyPair(Buffer.from(issued.certPem), Buffer.from(issued.keyPem));
  return { keyPair, caCertPem: ca.certPem };
}
