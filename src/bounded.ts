// Bounds on what the webhook sends back or logs of a request's own content, so that no input (a 1 MiB
// annotation value, a pod with thousands of bad names, a huge apiVersion string) can make a
// multi-megabyte response or log line. The limits and their reasons are in config/defaults.ts.
import { ECHO_MAX_CHARS, WARNING_MAX_CHARS, WARNING_MAX_COUNT } from './config/defaults.js';

const ELLIPSIS = '…';

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/** `text` cut to at most `max` UTF-16 units, ending in "…" when cut; never splits a surrogate pair. */
export function clip(text: string, max = ECHO_MAX_CHARS): string {
  if (text.length <= max) return text;
  let end = max - ELLIPSIS.length;
  if (isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
  return text.slice(0, end) + ELLIPSIS;
}

/** The API server drops a warning holding a control character (a newline from an annotation value). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * The first WARNING_MAX_COUNT distinct warnings, each at most WARNING_MAX_CHARS characters and without
 * control characters; when more were given, one last line says how many were left out ("… and 12
 * more"). Duplicates are dropped first: the API server shows each text once anyway.
 */
export function boundWarnings(warnings: readonly string[]): string[] {
  const unique = [...new Set(warnings)];
  const shown = unique.slice(0, WARNING_MAX_COUNT);
  const bounded = shown.map((warning) =>
    clip(warning.replace(CONTROL_CHARACTERS, ' '), WARNING_MAX_CHARS),
  );
  const left = unique.length - shown.length;
  return left > 0 ? [...bounded, `${ELLIPSIS} and ${left} more`] : bounded;
}
