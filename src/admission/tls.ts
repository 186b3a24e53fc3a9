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
import { TLS_RELOAD_POLL_INTERVAL_MS, TLS_RELOAD_SETTLE_MS } from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import { CoalescingRunner } from '../plumbing/coalescing-runner.js';

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

/** `setting` is the KeyPairFiles field at fault, so a caller can name it its own way (serve: the flag). */
const tlsError = (message: string, setting: keyof KeyPairFiles | undefined, cause?: unknown) =>
  new LxcfsWebhookError('E_TLS', message, { cause, setting });

const FIX: Record<keyof KeyPairFiles, string> = {
  certFile:
    'it must hold a PEM certificate chain, leaf first (the tls.crt of a kubernetes.io/tls Secret)',
  keyFile:
    'it must hold the PEM private key of that certificate (the tls.key of a kubernetes.io/tls Secret)',
};

/** How messages name the certificate and the key: by file when they came from files. */
function describe(source: KeyPairFiles | undefined): Record<keyof KeyPairFiles, string> {
  return source
    ? {
        certFile: `the certificate file "${source.certFile}"`,
        keyFile: `the key file "${source.keyFile}"`,
      }
    : { certFile: 'the certificate', keyFile: 'the key' };
}

/** Checks that `cert` and `key` (PEM) form a usable pair; `source`, when they were read from files, names them in errors. */
export function parseKeyPair(cert: Buffer, key: Buffer, source?: KeyPairFiles): KeyPair {
  const name = describe(source);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw tlsError(
      `${name.certFile} holds no PEM certificate (${String(err)}); ${FIX.certFile}`,
      'certFile',
      err,
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw tlsError(
      `${name.keyFile} holds no PEM private key (${String(err)}); ${FIX.keyFile}`,
      'keyFile',
      err,
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw tlsError(
      `${name.keyFile} is not the key of ${name.certFile}; use the key and certificate issued together (both from the same Secret)`,
      'keyFile',
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw tlsError(
      `TLS cannot use ${name.certFile} with ${name.keyFile}: ${String(err)}`,
      undefined,
      err,
    );
  }
  return {
    cert,
    key,
    fingerprint256: leaf.fingerprint256,
    notAfter: new Date(leaf.validTo),
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

function readPemFile(files: KeyPairFiles, which: keyof KeyPairFiles): Buffer {
  try {
    return readFileSync(files[which]);
  } catch (err) {
    const problem = unreadableReason(err);
    throw tlsError(`${describe(files)[which]} ${problem}; ${FIX[which]}`, which, err);
  }
}

/** Start-up load: throws E_TLS naming the file and the fix. */
export function loadKeyPair(files: KeyPairFiles): KeyPair {
  return parseKeyPair(readPemFile(files, 'certFile'), readPemFile(files, 'keyFile'), files);
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
    close() {
      closed = true;
      clearTimeout(settleTimer);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
