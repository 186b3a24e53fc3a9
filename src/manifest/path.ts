// Locations inside a manifest document, as the unescaped tokens of a JSON pointer (RFC 6901), and their
// readable form for messages: `spec.template.spec.containers[0]`, `metadata.annotations["a.io/b"]`.

import { LxcfsWebhookError } from '../errors.js';

/** `['spec', 'containers', '0']` for `/spec/containers/0`. */
export type PathTokens = readonly string[];

/** RFC 6901: `~1` becomes `/` first, then `~0` becomes `~` (the reverse of escaping). */
export function pointerTokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new LxcfsWebhookError('E_INTERNAL', `JSON pointer "${pointer}" does not start with /`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** An array index token of RFC 6901: digits, no sign, no leading zeros. */
export const ARRAY_INDEX = /^(0|[1-9]\d*)$/;

const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/;

export function describePath(path: PathTokens): string {
  let text = '';
  for (const token of path) {
    if (ARRAY_INDEX.test(token) || token === '-') text += `[${token}]`;
    else if (PLAIN_KEY.test(token)) text += text === '' ? token : `.${token}`;
    else text += `[${JSON.stringify(token)}]`;
  }
  return text === '' ? 'the document' : text;
}

/** How a value is named in messages: `a list`, `a string`, `empty`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}
