// The serving certificate: loaded and checked at start-up (a bad pair stops the process with a message
// naming the file and the fix), then watched so a rotated pair replaces the old one without a restart.
// Every load checks what the API server will: the key matches, the certificate is valid now and is for
// the Service's DNS name, and the chain fits one handshake. A pair failing any of it is never served.
//
// Kubernetes updates a Secret volume by writing a new directory and swapping the `..data` symlink,
// cert-manager and people rewrite files in place, one after the other. So the watcher reacts to any
// change in the files' directories, re-reads both files, and switches only to a pair that parses and
// matches; anything else (half-written, cert without its new key yet) is logged and the current pair
// keeps serving. A slow poll backs up the directory watch, which can miss events (e.g. on some volumes).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { isIP } from 'node:net';
import {
  CERT_CHAIN_MAX_BYTES,
  CERT_EXPIRY_WARNING_FRACTION,
  CERT_EXPIRY_WARNING_MAX_MS,
  TLS_RELOAD_POLL_INTERVAL_MS,
  TLS_RELOAD_SETTLE_MS,
} from '../config/defaults.js';
import { TlsProblem, type TlsProblemReason } from '../errors.js';
import { CoalescingRunner } from '../plumbing/coalescing-runner.js';

/** A certificate chain (PEM, leaf first) and its private key, checked to belong together and to be servable. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint of the leaf, as in `openssl x509 -fingerprint -sha256`. */
  fingerprint256: string;
  notBefore: Date;
  notAfter: Date;
  /** The leaf's subjectAltName, e.g. `DNS:localhost, IP Address:127.0.0.1`. */
  names: string;
}

export interface KeyPairFiles {
  certFile: string;
  keyFile: string;
}

/** What a certificate is checked against besides its key. */
export interface CertificateChecks {
  /**
   * The DNS name (or IP address) the API server checks the certificate for; none for a certificate
   * made in memory for localhost.
   */
  serverName?: string;
  /** The time to check validity at; now by default. */
  now?: Date;
}

/** The fields of KeyPairFiles and CertificateChecks a problem can be about, so a caller can name them its own way (serve: the flag). */
export type KeyPairSetting = keyof KeyPairFiles | 'serverName';

const tlsError = (
  reason: TlsProblemReason,
  message: string,
  setting: KeyPairSetting | undefined,
  cause?: unknown,
) => new TlsProblem(reason, message, { cause, setting });

const FIX: Record<keyof KeyPairFiles, string> = {
  certFile:
    'it must hold a PEM certificate chain, leaf first (the tls.crt of a kubernetes.io/tls Secret)',
  keyFile:
    'it must hold the PEM private key of that certificate (the tls.key of a kubernetes.io/tls Secret)',
};

/** How a new certificate is had, for messages about one that cannot be served. */
const RENEW =
  'issue a new one (cert-manager: see `kubectl describe certificate`; `lxcfs-webhook certs`: run it again and apply its Secret)';

/** How messages name the certificate and the key: by file when they came from files. */
function describe(source: KeyPairFiles | undefined): Record<keyof KeyPairFiles, string> {
  return source
    ? {
        certFile: `the certificate file "${source.certFile}"`,
        keyFile: `the key file "${source.keyFile}"`,
      }
    : { certFile: 'the certificate', keyFile: 'the key' };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** Every certificate of a PEM chain, leaf first; throws naming the file when there is none or one does not parse. */
function parseChain(cert: Buffer, name: string): X509Certificate[] {
  const blocks = cert.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    throw tlsError(
      'no-certificate',
      `${name} holds no PEM certificate; ${FIX.certFile}`,
      'certFile',
    );
  }
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw tlsError(
        'no-certificate',
        `certificate ${index + 1} of ${name} does not parse (${String(err)}); ${FIX.certFile}`,
        'certFile',
        err,
      );
    }
  });
}

/** Node 20's X509Certificate has validFrom/validTo as text ("Jan  2 03:04:05 2026 GMT") only. */
const dateOf = (text: string): Date => new Date(text);

/** `leaf` answers for `serverName` the way Go's TLS client checks it: subjectAltName only, wildcards in the first label only. */
function isFor(leaf: X509Certificate, serverName: string): boolean {
  if (isIP(serverName)) return leaf.checkIP(serverName) !== undefined;
  return (
    leaf.checkHost(serverName, {
      subject: 'never',
      wildcards: true,
      partialWildcards: false,
      multiLabelWildcards: false,
    }) !== undefined
  );
}

/** The checks a served certificate must pass beyond belonging to its key: time, name and chain size. */
function checkServable(chain: X509Certificate[], name: string, checks: CertificateChecks): void {
  const leaf = chain[0]!;
  const now = checks.now ?? new Date();
  const notBefore = dateOf(leaf.validFrom);
  const notAfter = dateOf(leaf.validTo);
  if (now < notBefore) {
    throw tlsError(
      'not-yet-valid',
      `${name} is not valid before ${notBefore.toISOString()} (it is ${now.toISOString()} here): ` +
        'the clocks of this node and of the issuer disagree, or it was issued for later; it is loaded once valid',
      'certFile',
    );
  }
  if (now > notAfter) {
    throw tlsError('expired', `${name} expired at ${notAfter.toISOString()}; ${RENEW}`, 'certFile');
  }
  if (checks.serverName !== undefined && !isFor(leaf, checks.serverName)) {
    throw tlsError(
      'wrong-name',
      `${name} is for ${leaf.subjectAltName ?? 'no subjectAltName'}, not "${checks.serverName}", the name the API server ` +
        "checks (<service>.<namespace>.svc of the webhook configuration's Service); issue the certificate for it, or set this to the name " +
        'the webhook configuration uses',
      'serverName',
    );
  }
  const chainBytes = chain.reduce((sum, certificate) => sum + certificate.raw.length, 0);
  if (chainBytes > CERT_CHAIN_MAX_BYTES) {
    throw tlsError(
      'chain-too-large',
      `${name} holds ${chain.length} certificates, ${chainBytes} bytes (DER): over ${CERT_CHAIN_MAX_BYTES}, ` +
        'more than TLS clients take in one handshake; keep the serving certificate and its intermediates only',
      'certFile',
    );
  }
}

/**
 * Checks that `cert` and `key` (PEM) form a pair worth serving: they belong together, the certificate is
 * valid now, is for `checks.serverName`, and its chain fits a handshake. `source`, when they were read
 * from files, names them in errors. Throws a TlsProblem saying what is wrong and how to fix it.
 */
export function parseKeyPair(
  cert: Buffer,
  key: Buffer,
  source?: KeyPairFiles,
  checks: CertificateChecks = {},
): KeyPair {
  const name = describe(source);
  const chain = parseChain(cert, name.certFile);
  const leaf = chain[0]!;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw tlsError(
      'no-key',
      `${name.keyFile} holds no PEM private key (${String(err)}); ${FIX.keyFile}`,
      'keyFile',
      err,
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw tlsError(
      'key-mismatch',
      `${name.keyFile} is not the key of ${name.certFile}; use the key and certificate issued together (both from the same Secret)`,
      'keyFile',
    );
  }
  checkServable(chain, name.certFile, checks);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw tlsError(
      'unusable',
      `TLS cannot use ${name.certFile} with ${name.keyFile}: ${String(err)}`,
      undefined,
      err,
    );
  }
  return {
    cert,
    key,
    fingerprint256: leaf.fingerprint256,
    notBefore: dateOf(leaf.validFrom),
    notAfter: dateOf(leaf.validTo),
    names: leaf.subjectAltName ?? '',
  };
}

/** Why a file given by flag could not be read, in words that follow its name: "does not exist". */
export function unreadableReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT'
    ? 'does not exist'
    : code === 'EACCES'
      ? 'is not readable by this user'
      : `cannot be read (${code})`;
}

/**
 * How long before its end a certificate valid from `notBefore` to `notAfter` starts to warn: a sixth of
 * its lifetime, at most 30 days (CERT_EXPIRY_WARNING_* in config/defaults.ts say why).
 */
export function expiryWarningMs(pair: Pick<KeyPair, 'notBefore' | 'notAfter'>): number {
  const lifetime = pair.notAfter.getTime() - pair.notBefore.getTime();
  return Math.min(lifetime * CERT_EXPIRY_WARNING_FRACTION, CERT_EXPIRY_WARNING_MAX_MS);
}

/** A warning when `pair` expires within expiryWarningMs of `now`; undefined otherwise. */
export function expiresSoon(
  pair: Pick<KeyPair, 'notBefore' | 'notAfter'>,
  now = new Date(),
): string | undefined {
  const left = pair.notAfter.getTime() - now.getTime();
  if (left > expiryWarningMs(pair)) return undefined;
  if (left <= 0)
    return `the TLS certificate in use expired at ${pair.notAfter.toISOString()}: the API server refuses it; ${RENEW}`;
  const days = (left / 86_400_000).toFixed(1);
  return `the TLS certificate in use expires in ${days} days (${pair.notAfter.toISOString()}) and has not been renewed; ${RENEW}`;
}

function readPemFile(files: KeyPairFiles, which: keyof KeyPairFiles): Buffer {
  try {
    return readFileSync(files[which]);
  } catch (err) {
    throw tlsError(
      'unreadable',
      `${describe(files)[which]} ${unreadableReason(err)}; ${FIX[which]}`,
      which,
      err,
    );
  }
}

/** Start-up load: throws a TlsProblem (E_TLS) naming the file, what is wrong and the fix. */
export function loadKeyPair(files: KeyPairFiles, checks: CertificateChecks = {}): KeyPair {
  return parseKeyPair(readPemFile(files, 'certFile'), readPemFile(files, 'keyFile'), files, checks);
}

export interface KeyPairWatchOptions extends KeyPairFiles {
  /** The pair in use; only a different, valid pair is reported. */
  current: KeyPair;
  /** Checked at every load, as at start-up (validity is checked at the time of each load). */
  serverName?: string;
  onReload(pair: KeyPair): void;
  /**
   * A changed pair that is not served; the current one stays. Reported once per distinct content; the
   * files are read again at every change and poll, so a pair that becomes valid later is then loaded.
   */
  onReject(problem: TlsProblem): void;
  /** Backup poll for changes the directory watch misses. */
  pollIntervalMs?: number;
}

export interface KeyPairWatcher {
  /** True while the files hold a pair other than the one served, which was refused. */
  refusing(): boolean;
  close(): void;
}

export function watchKeyPair(options: KeyPairWatchOptions): KeyPairWatcher {
  const { certFile, keyFile, onReload, onReject } = options;
  let current = options.current;
  let lastRejected: { cert: Buffer; key: Buffer } | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  const checks = new CoalescingRunner<void>();
  let closed = false;

  async function check(): Promise<void> {
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    } catch (err) {
      // Mid-swap a path can be briefly missing; the next event or poll reads it again.
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return report(
        Buffer.alloc(0),
        Buffer.alloc(0),
        tlsError('unreadable', `the TLS files cannot be read (${code})`, undefined, err),
      );
    }
    if (cert.equals(current.cert) && key.equals(current.key)) {
      lastRejected = undefined;
      return;
    }
    try {
      const pair = parseKeyPair(
        cert,
        key,
        { certFile, keyFile },
        { serverName: options.serverName },
      );
      current = pair;
      lastRejected = undefined;
      if (!closed) onReload(pair);
    } catch (err) {
      report(
        cert,
        key,
        err instanceof TlsProblem ? err : tlsError('unusable', String(err), undefined, err),
      );
    }
  }

  function report(cert: Buffer, key: Buffer, problem: TlsProblem): void {
    if (lastRejected && lastRejected.cert.equals(cert) && lastRejected.key.equals(key)) return;
    lastRejected = { cert, key };
    if (!closed) onReject(problem);
  }

  /** Runs one check at a time; a change seen during a check gets one more check after it. */
  function requestCheck(): void {
    if (!closed) void checks.run(check);
  }

  function onChange(): void {
    clearTimeout(settleTimer);
    settleTimer = setTimeout(requestCheck, TLS_RELOAD_SETTLE_MS);
  }

  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
    try {
      // A watch error (directory gone, inotify limit) leaves the poll in charge.
      watchers.push(watch(dir, { persistent: false }, onChange).on('error', () => undefined));
    } catch {
      // Same: the poll below still notices changes.
    }
  }
  const poll = setInterval(
    requestCheck,
    options.pollIntervalMs ?? TLS_RELOAD_POLL_INTERVAL_MS,
  ).unref();

  return {
    refusing: () => lastRejected !== undefined,
    close() {
      closed = true;
      clearTimeout(settleTimer);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
