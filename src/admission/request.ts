// What the transport checks of an HTTP request before any AdmissionReview is looked at: path, method,
// content type and size, and the body read within the size limit and the shared body budget. Each
// refusal is a RequestProblem (E_REQUEST) whose reason maps to a status in errors.ts.
import type { IncomingMessage } from 'node:http';
import { clip } from '../bounded.js';
import { MUTATE_PATH } from '../config/defaults.js';
import { RequestProblem } from '../errors.js';
import type { BodyBudget } from './body-budget.js';

/** `application/json`, optionally with `charset=utf-8` (JSON is UTF-8; nothing else is accepted). */
function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [mediaType = '', ...params] = header.split(';');
  if (mediaType.trim().toLowerCase() !== 'application/json') return false;
  return params.every((param) => {
    const [name = '', value = ''] = param.split('=');
    return (
      name.trim().toLowerCase() !== 'charset' ||
      value.trim().replace(/"/g, '').toLowerCase() === 'utf-8'
    );
  });
}

export const pathOf = (url: string | undefined): string => (url ?? '/').split('?', 1)[0]!;

/** Checks everything about a request that can be known before its body is read. */
export function checkRequest(
  req: IncomingMessage,
  maxRequestBytes: number,
): RequestProblem | undefined {
  const path = pathOf(req.url);
  if (path !== MUTATE_PATH) {
    return new RequestProblem(
      'not-found',
      `no such path "${clip(path)}"; AdmissionReviews go to POST ${MUTATE_PATH}`,
    );
  }
  if (req.method !== 'POST') {
    return new RequestProblem(
      'method-not-allowed',
      `${clip(String(req.method))} is not supported; send AdmissionReviews with POST`,
      { Allow: 'POST' },
    );
  }
  const contentType = req.headers['content-type'];
  if (!isJsonContentType(contentType)) {
    return new RequestProblem(
      'unsupported-media-type',
      `Content-Type must be application/json (UTF-8), not ${contentType === undefined ? 'missing' : `"${clip(contentType)}"`}`,
    );
  }
  const declared = Number(req.headers['content-length']);
  if (declared > maxRequestBytes) return tooLarge(maxRequestBytes);
  return undefined;
}

/** Closes the connection too: the rest of the body is not read, so the connection cannot be reused. */
function tooLarge(maxRequestBytes: number): RequestProblem {
  return new RequestProblem(
    'payload-too-large',
    `request body is larger than ${maxRequestBytes} bytes, this webhook's limit; raise the limit if real reviews are this large`,
    { Connection: 'close' },
  );
}

/**
 * The budget is full: answered 503 at once and the connection closed, the body never read. A 503 is a
 * call failure to the API server, which then applies the webhook's failurePolicy (Ignore: the pod is
 * created without lxcfs; Fail: refused, and its controller retries). No Retry-After: with it the API
 * server's client would wait and resend within the same call (client-go rest, checkWait), delaying
 * every pod while the bodies that fill the budget are held for up to the request timeout. An answer of
 * `allowed` cannot be given: the uid it must echo is in the body that was not read.
 *
 * Closing with the body unread makes the kernel reset the connection, and a client still sending may
 * see the reset instead of the 503: to the API server that is the same call failure. Reading and
 * dropping the rest instead would keep the 503 readable, but every refused body then passes through
 * TLS and waits for the garbage collector: 36 refused 7.8 MB bodies took Node 24 from 110 to 186 MiB.
 */
function overBudget(budget: BodyBudget): RequestProblem {
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  return new RequestProblem(
    'busy',
    `the webhook is busy: request bodies in flight hold ${mib(budget.inUseBytes)} MiB of the ${mib(budget.limitBytes)} MiB it reads at once; ` +
      'the API server applies failurePolicy',
    { Connection: 'close' },
  );
}

export interface BodyLimits {
  /** Largest body read; beyond it a 413. */
  maxBytes: number;
  /** Shared by all requests; a body that does not fit gets a 503. */
  budget: BodyBudget;
  /** Called once the body is admitted (its declared length taken from the budget), before it is read. */
  onAdmitted?: () => void;
}

export const expectsContinue = (req: IncomingMessage): boolean =>
  req.headers.expect?.toLowerCase() === '100-continue';

/** The Content-Length the client declared; undefined for a chunked body. */
function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  const length = Number(header);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/**
 * Reads the body within `limits`: its declared length is taken from the budget before anything is read
 * (a chunked body takes each chunk as it comes), and given back when `done` has run, or when the request
 * ends without a body. Over the size limit or the budget it stops at once and reports why. `done` is
 * called once at most: a client that aborts after its answer is not answered twice.
 */
export function readBody(
  req: IncomingMessage,
  limits: BodyLimits,
  done: (body: Buffer | RequestProblem) => void,
): void {
  const { maxBytes, budget } = limits;
  const chunks: Buffer[] = [];
  let size = 0;
  let held = 0;
  let settled = false;
  const settle = (result: Buffer | RequestProblem) => {
    if (settled) return;
    settled = true;
    req.removeListener('data', onData);
    try {
      done(result);
    } finally {
      budget.giveBack(held);
      held = 0;
    }
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) return settle(tooLarge(maxBytes));
    if (size > held) {
      if (!budget.tryTake(size - held)) return settle(overBudget(budget));
      held = size;
    }
    chunks.push(chunk);
  };

  const declared = declaredLength(req);
  if (declared !== undefined) {
    if (!budget.tryTake(declared)) return settle(overBudget(budget));
    held = declared;
  }
  limits.onAdmitted?.();
  req.on('data', onData);
  req.on('end', () => settle(Buffer.concat(chunks, size)));
  const aborted = () =>
    settle(
      new RequestProblem(
        'aborted',
        'the client closed the connection before the body was complete',
      ),
    );
  req.on('error', aborted);
  // Whatever ends the request (a reset, the request timeout), its share of the budget comes back.
  req.on('close', aborted);
}
