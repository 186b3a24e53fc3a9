// The serving certificate: loaded and checked at start-up (a bad pair stops the process with a message
// naming the file), then watched so a rotated pair replaces the old one without a restart.
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
import { LxcfsWebhookError } from '../errors.js';

/** A certificate chain (PEM, leaf first) and its private key, checked to belong together. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint of the leaf, as in `openssl x509 -fingerprint -sha256`. */
  fingerprint256: string;
  notAfter: Date;
  /** The leaf's subjectAltName, e.g. `DNS:localhost, IP Address:127.0.0.1`. */
  names: string;
}

export interface KeyPairFiles {
  certFile: string;
  keyFile: string;
}

const tlsError = (message: string, cause?: unknown) => new LxcfsWebhookError('E_TLS', message, { cause });

const CERT_FIX = 'pass a PEM certificate chain, leaf first (the tls.crt of a kubernetes.io/tls Secret)';
const KEY_FIX = 'pass the PEM private key of that certificate (the tls.key of a kubernetes.io/tls Secret)';

/** Checks that `cert` and `key` (PEM) form a usable pair; `source` names them in error messages. */
export function parseKeyPair(cert: Buffer, key: Buffer, source: KeyPairFiles): KeyPair {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw tlsError(`--tls-cert file "${source.certFile}" holds no PEM certificate (${String(err)}); ${CERT_FIX}`, err);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw tlsError(`--tls-key file "${source.keyFile}" holds no PEM private key (${String(err)}); ${KEY_FIX}`, err);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw tlsError(
      `--tls-key file "${source.keyFile}" is not the key of the certificate in "${source.certFile}"; ` +
      'pass the key and certificate issued together (both from the same Secret)',
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw tlsError(`TLS cannot use the pair "${source.certFile}" and "${source.keyFile}": ${String(err)}`, err);
  }
  return { cert, key, fingerprint256: leaf.fingerprint256, notAfter: new Date(leaf.validTo), names: leaf.subjectAltName ?? '' };
}

function readPemFile(file: string, flag: '--tls-cert' | '--tls-key'): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : `cannot be read (${code})`;
    throw tlsError(`${flag} file "${file}" ${problem}; ${flag === '--tls-cert' ? CERT_FIX : KEY_FIX}`, err);
  }
}

/** Start-up load: throws E_TLS naming the file and the fix. */
export function loadKeyPair(files: KeyPairFiles): KeyPair {
  return parseKeyPair(readPemFile(files.certFile, '--tls-cert'), readPemFile(files.keyFile, '--tls-key'), files);
}

export interface KeyPairWatchOptions extends KeyPairFiles {
  /** The pair in use; only a different, valid pair is reported. */
  current: KeyPair;
  onReload(pair: KeyPair): void;
  /** A changed pair that cannot be used; the current one stays. Reported once per distinct content. */
  onReject(error: Error): void;
  /** Backup poll for changes the directory watch misses. */
  pollIntervalMs?: number;
}

export interface KeyPairWatcher {
  close(): void;
}

/** Lets the rest of a multi-file update land before the files are read. */
const SETTLE_MS = 100;
const DEFAULT_POLL_INTERVAL_MS = 10_000;

export function watchKeyPair(options: KeyPairWatchOptions): KeyPairWatcher {
  const { certFile, keyFile, onReload, onReject } = options;
  let current = options.current;
  let lastRejected: { cert: Buffer; key: Buffer } | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;
  let recheck = false;
  let closed = false;

  async function check(): Promise<void> {
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    } catch (err) {
      // Mid-swap a path can be briefly missing; the next event or poll reads it again.
      return report(Buffer.alloc(0), Buffer.alloc(0), err as Error);
    }
    if (cert.equals(current.cert) && key.equals(current.key)) return;
    try {
      const pair = parseKeyPair(cert, key, { certFile, keyFile });
      current = pair;
      lastRejected = undefined;
      if (!closed) onReload(pair);
    } catch (err) {
      report(cert, key, err as Error);
    }
  }

  function report(cert: Buffer, key: Buffer, error: Error): void {
    if (lastRejected && lastRejected.cert.equals(cert) && lastRejected.key.equals(key)) return;
    lastRejected = { cert, key };
    if (!closed) onReject(error);
  }

  /** Runs one check at a time; a change seen during a check gets one more check after it. */
  function requestCheck(): void {
    if (closed) return;
    if (checking) {
      recheck = true;
      return;
    }
    checking = check().finally(() => {
      checking = undefined;
      if (recheck) {
        recheck = false;
        requestCheck();
      }
    });
  }

  function onChange(): void {
    clearTimeout(settleTimer);
    settleTimer = setTimeout(requestCheck, SETTLE_MS);
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
  const poll = setInterval(requestCheck, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS).unref();

  return {
    close() {
      closed = true;
      clearTimeout(settleTimer);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
