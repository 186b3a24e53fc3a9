// The CA bundle that client certificates must chain to when `serve` authenticates the API server
// (--client-ca). Loaded and checked at start-up only: a bad file stops the process with a message naming
// it. The API server's client certificate can be renewed freely under the same CA; a new CA needs a
// restart (`kubectl rollout restart`, which drains), as it is rare and the serving certificate is not.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LxcfsWebhookError } from '../errors.js';
import { unreadableReason } from './tls.js';

const FIX =
  "it must hold the PEM certificate(s) of the CA that signs the API server's webhook client certificate";

const caError = (message: string, cause?: unknown) =>
  new LxcfsWebhookError('E_TLS', message, { cause, setting: 'clientCaFile' });

/** Checks that `pem` holds one or more certificates, each a CA; returns it unchanged. */
function parseClientCa(pem: Buffer, file: string): Buffer {
  const blocks =
    pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ??
    [];
  if (blocks.length === 0)
    throw caError(`the client CA file "${file}" holds no PEM certificate; ${FIX}`);
  for (const block of blocks) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block);
    } catch (err) {
      throw caError(
        `the client CA file "${file}" holds a certificate that does not parse (${String(err)}); ${FIX}`,
        err,
      );
    }
    if (!certificate.ca) {
      throw caError(
        `the client CA file "${file}" holds "${certificate.subject.replace(/\n/g, ', ')}", which is not a CA certificate; ${FIX}`,
      );
    }
  }
  return pem;
}

export function loadClientCa(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw caError(`the client CA file "${file}" ${unreadableReason(err)}; ${FIX}`, err);
  }
  return parseClientCa(pem, file);
}
