// Typed errors with stable codes: callers and tests match on `code`, people read `message`, and every
// message says what to do about it. ERROR_CODES is the one table of codes; the CLI prints the code
// after the message, so a user can look it up here. The README's table says exactly the same (a test
// holds them equal). Bad annotations are not errors: they are warnings on the pod (inject/options.ts).

export const ERROR_CODES = {
  E_CONFIG:
    'a flag or setting has a value that cannot be used; nothing was started or written (CLI exit 2)',
  E_REQUEST:
    'an HTTP request the webhook cannot answer with an AdmissionReview; answered with a 4xx, or a 503 when request bodies in flight fill --max-request-bytes-in-flight; its reason in the log and in the `reason` label of lxcfs_webhook_requests_total',
  E_MANIFEST: 'a manifest the CLI cannot read, parse or inject; nothing is printed (CLI exit 2)',
  E_FILE: 'a file or directory the CLI writes cannot be written (CLI exit 2)',
  E_TLS:
    'a certificate or key that cannot be used or must not be served (expired, not yet valid, not for --tls-server-name, a chain over 60 KiB, another key); at start-up the process stops, on reload the old pair stays',
  E_AGENT: 'node agent: a known fatal condition (missing privileges, lxcfs or the native helper)',
  E_NATIVE: 'node agent: the native remount helper failed',
  E_KUBE:
    'a Kubernetes API call of an in-cluster command (certs --secret) failed; the message names the call and the answer, and nothing after it was changed (CLI exit 2)',
  E_INTERNAL: 'a bug in lxcfs-webhook: the message says what broke; please report it',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class LxcfsWebhookError extends Error {
  readonly code: ErrorCode;
  /**
   * The setting the problem is about, by its name in the lower layer's own options (e.g. `certFile`,
   * `port`), so the caller can name it in its own terms: the CLI turns it into a flag name.
   */
  readonly setting?: string;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; setting?: string }) {
    super(message, options);
    this.name = 'LxcfsWebhookError';
    this.code = code;
    this.setting = options?.setting;
  }

  /** The same error with `where` (a file, a flag) put in front of the message. */
  within(where: string): LxcfsWebhookError {
    return new LxcfsWebhookError(this.code, `${where}: ${this.message}`, {
      cause: this,
      setting: this.setting,
    });
  }
}

export const configError = (message: string, setting?: string) =>
  new LxcfsWebhookError('E_CONFIG', message, { setting });

/**
 * A value that cannot be used, with what would be: `the lxcfs root has value "x"; expected an
 * absolute directory`. The CLI rewrites it to name the flag the value came from.
 */
export class InvalidValue extends LxcfsWebhookError {
  constructor(
    readonly subject: string,
    readonly value: string,
    readonly expected: string,
  ) {
    super('E_CONFIG', `${subject} has value "${value}"; expected ${expected}`);
  }
}

/**
 * E_REQUEST in detail: why a request was answered without an AdmissionReview, and with which status.
 * The reasons are stable: they are the `reason` label of lxcfs_webhook_requests_total and of the log.
 */
export const REQUEST_PROBLEMS = {
  'not-found': { status: 404, meaning: 'a path other than the mutate path' },
  'method-not-allowed': { status: 405, meaning: 'a method other than POST' },
  'unsupported-media-type': {
    status: 415,
    meaning: 'a Content-Type other than application/json (UTF-8)',
  },
  'payload-too-large': {
    status: 413,
    meaning: 'a body over the request size limit; the connection is closed',
  },
  busy: {
    status: 503,
    meaning:
      'request bodies in flight fill --max-request-bytes-in-flight; answered at once, unread, and the connection is closed',
  },
  aborted: {
    status: 400,
    meaning: 'the client closed the connection before the body was complete',
  },
  'malformed-json': { status: 400, meaning: 'a body that is not JSON' },
  'invalid-review': { status: 400, meaning: 'JSON that is not an AdmissionReview we can answer' },
} as const;

export type RequestProblemReason = keyof typeof REQUEST_PROBLEMS;

/** An E_REQUEST error: answered with REQUEST_PROBLEMS[reason].status and `{ error: message }`. */
export class RequestProblem extends LxcfsWebhookError {
  readonly status: number;
  constructor(
    readonly reason: RequestProblemReason,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super('E_REQUEST', message);
    this.status = REQUEST_PROBLEMS[reason].status;
  }
}

/**
 * E_TLS in detail: why a certificate and key are not served. The reasons are stable: they are the
 * `reason` label of lxcfs_webhook_tls_reloads_total{result="rejected"} and of the log.
 */
export const TLS_PROBLEMS = {
  unreadable: 'a file cannot be read',
  'no-certificate': 'the certificate file holds no PEM certificate, or one that does not parse',
  'no-key': 'the key file holds no PEM private key',
  'key-mismatch': 'the key is not the key of the certificate',
  'not-yet-valid': "the certificate's notBefore is still ahead",
  expired: "the certificate's notAfter has passed",
  'wrong-name': 'the certificate is not for the name the API server checks (--tls-server-name)',
  'chain-too-large': 'the chain is larger than TLS clients take in one handshake',
  unusable: 'TLS refuses the pair for another reason',
} as const;

export type TlsProblemReason = keyof typeof TLS_PROBLEMS;

/** An E_TLS error with its reason; `setting` names the file at fault (certFile or keyFile). */
export class TlsProblem extends LxcfsWebhookError {
  constructor(
    readonly reason: TlsProblemReason,
    message: string,
    options?: { cause?: unknown; setting?: string },
  ) {
    super('E_TLS', message, options);
  }
}
