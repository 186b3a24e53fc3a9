// Typed errors with stable codes: callers and tests match on `code`, people read `message`, and every
// message says what to do about it.

export type ErrorCode =
  | 'E_CONFIG'        // a flag or setting has a value we cannot use
  | 'E_ANNOTATION'    // a pod annotation of ours has a value we cannot use
  | 'E_REQUEST'       // an HTTP request we cannot answer with an AdmissionReview
  | 'E_MANIFEST'      // a manifest the CLI cannot read
  | 'E_TLS'           // certificate or key unusable
  | 'E_AGENT'         // node agent: a known fatal condition
  | 'E_NATIVE';       // node agent: the native remount helper failed

export class LxcfsWebhookError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LxcfsWebhookError';
    this.code = code;
  }
}

export const configError = (message: string) => new LxcfsWebhookError('E_CONFIG', message);
