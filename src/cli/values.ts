// The kinds of value a flag takes, shared by every subcommand so the same kind is written, checked
// and described the same way everywhere. A kind parses the text given on the command line (throwing
// InvalidValue with what is expected; flags.ts adds the flag's name) and formats a value back into
// that text, which is how --help shows defaults.
import { isIP } from 'node:net';
import { MAX_DURATION_MS, type LxcfsFile } from '../config/defaults.js';
import { InvalidValue } from '../errors.js';
import {
  describeAllowed,
  parseFileList,
  parseLxcfsRoot,
  parseRuntimeClassList,
} from '../inject/settings.js';

export interface ValueKind<T> {
  /** Stands for the value in --help: `--port N`. */
  readonly placeholder: string;
  parse(text: string): T;
  /** The value written the way parse reads it. */
  format(value: T): string;
}

/** A kind whose parse returns undefined for text it cannot use; the error then says what `expected` says. */
function kind<T>(
  placeholder: string,
  expected: string,
  read: (text: string) => T | undefined,
  format: (value: T) => string,
): ValueKind<T> {
  return {
    placeholder,
    parse(text) {
      const value = read(text);
      if (value === undefined) throw new InvalidValue('the value', text, expected);
      return value;
    },
    format,
  };
}

const DECIMAL = /^\d+$/;

/** 0-65535 in decimal only: `0x1f91`, `1e3`, `8081.0` and `""` would all pass Number(). */
export const port = kind(
  'PORT',
  'a port number from 0 to 65535, in decimal (0 picks a free one)',
  (text) => (DECIMAL.test(text) && Number(text) <= 65535 ? Number(text) : undefined),
  String,
);

/** A whole number from `min` to `max`, in decimal; `unit` names what is counted (`days`). */
export function integer(min: number, max: number, unit: string): ValueKind<number> {
  return kind(
    'N',
    `a whole number of ${unit} from ${min} to ${max}`,
    (text) => {
      const n = DECIMAL.test(text) ? Number(text) : NaN;
      return n >= min && n <= max ? n : undefined;
    },
    String,
  );
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/** `2m`, `10s` or `500ms`: the largest unit that writes it exactly. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  if (ms % DURATION_UNITS_MS.m === 0) return `${ms / DURATION_UNITS_MS.m}m`;
  if (ms % DURATION_UNITS_MS.s === 0) return `${ms / DURATION_UNITS_MS.s}s`;
  return `${ms}ms`;
}

/**
 * A duration in milliseconds, from `minMs` up to MAX_DURATION_MS: `500ms`, `10s`, `1.5s`, `2m`, or a
 * bare number of seconds (what `--shutdown-grace` always took).
 */
export function duration(minMs: number): ValueKind<number> {
  const expected =
    `a duration from ${formatDuration(minMs)} to ${formatDuration(MAX_DURATION_MS)} such as 500ms, 10s or 2m ` +
    '(a bare number is seconds)';
  return kind(
    'DURATION',
    expected,
    (text) => {
      const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
      if (!match) return undefined;
      const ms = Math.round(
        Number(match[1]) * DURATION_UNITS_MS[(match[2] ?? 's') as keyof typeof DURATION_UNITS_MS],
      );
      return ms >= minMs && ms <= MAX_DURATION_MS ? ms : undefined;
    },
    formatDuration,
  );
}

const SIZE_UNITS = { Mi: 1024 * 1024, Ki: 1024, '': 1 } as const;

/** A size in bytes from `min` to `max`, written in bytes or with a Ki or Mi suffix. */
export function byteSize(min: number, max: number): ValueKind<number> {
  const format = (bytes: number): string => {
    const unit = (Object.keys(SIZE_UNITS) as Array<keyof typeof SIZE_UNITS>).find(
      (u) => bytes % SIZE_UNITS[u] === 0,
    )!;
    return `${bytes / SIZE_UNITS[unit]}${unit}`;
  };
  return kind(
    'SIZE',
    `a size from ${format(min)} to ${format(max)}, in bytes or with a Ki or Mi suffix, e.g. 8Mi`,
    (text) => {
      const match = /^(\d+)(Ki|Mi)?$/.exec(text);
      const bytes = match
        ? Number(match[1]) * SIZE_UNITS[(match[2] ?? '') as keyof typeof SIZE_UNITS]
        : NaN;
      return bytes >= min && bytes <= max ? bytes : undefined;
    },
    format,
  );
}

/** One of `choices`, exactly as written. */
export function choice<const C extends string>(choices: readonly C[]): ValueKind<C> {
  const expected =
    choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(', ')}`;
  return kind(choices.join('|'), expected, (text) => choices.find((c) => c === text), String);
}

/** `true` or `false`, for a setting that is on by default: a switch could only turn it on. */
export const onOff = kind<boolean>(
  'true|false',
  'true or false',
  (text) => (text === 'true' ? true : text === 'false' ? false : undefined),
  String,
);

/** Any non-empty text; `expected` says what it should be (`an IP address or host name`). */
export function text(placeholder: string, expected: string): ValueKind<string> {
  return kind(placeholder, expected, (value) => (value === '' ? undefined : value), String);
}

/** A file or directory path; relative ones are taken from the working directory. */
export const path = (placeholder: 'FILE' | 'DIR' | 'PATH'): ValueKind<string> =>
  text(
    placeholder,
    placeholder === 'DIR' ? 'a directory' : placeholder === 'FILE' ? 'a file' : 'a path',
  );

/** Words separated by spaces (`--enable-cfs -l`); empty means none. */
export const words = kind<readonly string[]>(
  'WORDS',
  'words separated by spaces',
  (value) => value.split(/\s+/).filter((word) => word !== ''),
  (list) => `"${list.join(' ')}"`,
);

/** A Kubernetes object name (RFC 1123 label). */
export const kubernetesName = kind(
  'NAME',
  'a Kubernetes name (lower-case letters, digits and "-", at most 63)',
  (value) => (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value) ? value : undefined),
  String,
);

/** A DNS name (RFC 1123, lower case, dots between labels) or an IP address: what a certificate can be for. */
export const hostName = kind(
  'NAME',
  'a DNS name such as lxcfs-webhook.lxcfs.svc (lower case) or an IP address',
  (value) =>
    isIP(value) !== 0 ||
    (value.length <= 253 &&
      /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/.test(value))
      ? value
      : undefined,
  String,
);

/** The root `serve`, `inject` and `docker-args` take hostPaths from, and the agent keeps its anchor at. */
export const lxcfsRoot: ValueKind<string> = {
  placeholder: 'DIR',
  parse: parseLxcfsRoot,
  format: String,
};

/** Comma-separated lxcfs files by name (meminfo) or path (/proc/meminfo). */
export const lxcfsFiles: ValueKind<readonly LxcfsFile[]> = {
  placeholder: 'LIST',
  parse: parseFileList,
  format: describeAllowed,
};

/** Comma-separated RuntimeClass names (`gvisor,kata-*`); empty means none. */
export const runtimeClasses: ValueKind<readonly string[]> = {
  placeholder: 'LIST',
  parse: parseRuntimeClassList,
  format: (list) => `"${list.join(',')}"`,
};

/** `base`, also refusing values `accept` rejects, and describing what is expected as `expected`. */
export function narrowed<T>(
  base: ValueKind<T>,
  accept: (value: T) => boolean,
  expected: string,
): ValueKind<T> {
  return {
    ...base,
    parse(value) {
      const parsed = base.parse(value);
      if (!accept(parsed)) throw new InvalidValue('the value', value, expected);
      return parsed;
    },
  };
}
