// What the transport checks of an HTTP request before any AdmissionReview is looked at: path, method,
// content type and size, and the body read within the size limit. Each refusal is a RequestProblem
// (E_REQUEST) whose reason maps to a status in errors.ts.
import type { IncomingMessage } from 'node:http';
import { clip } from '../bounded.js';
import { MUTATE_PATH } from '../config/defaults.js';
import { RequestProblem } from '../errors.js';

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
 * Reads the body up to `limit` bytes; beyond it, stops collecting and reports a 413 at once. `done`
 * is called once at most: a client that aborts after its answer is not answered twice.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  done: (body: Buffer | RequestProblem) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const settle = (result: Buffer | RequestProblem) => {
    if (settled) return;
    settled = true;
    req.removeListener('data', onData);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) return settle(tooLarge(limit));
    chunks.push(chunk);
  };
  req.on('data', onData);
  req.on('end', () => settle(Buffer.concat(chunks, size)));
  req.on('error', () =>
    settle(
      new RequestProblem(
        'aborted',
        'the client closed the connection before the body was complete',
      ),
    ),
  );
}
