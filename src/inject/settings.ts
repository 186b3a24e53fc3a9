// What the operator configures for injection (flags of `serve`, `inject`, `docker-args`), validated
// once at start-up so that a bad value stops the process with a message instead of breaking pods.
import { posix } from 'node:path';
import {
  ALLOWED_FILES,
  DEFAULT_FILES,
  DEFAULT_LXCFS_ROOT,
  DEFAULT_SANDBOX_RUNTIME_CLASSES,
  type LxcfsFile,
} from '../config/defaults.js';
import { InvalidValue } from '../errors.js';

export interface InjectionSettings {
  /** Absolute, normalised host directory the per-file hostPaths are taken from. */
  lxcfsRoot: string;
  /** Container paths to mount, each one of ALLOWED_FILES, in a stable order. */
  files: readonly LxcfsFile[];
  /** RuntimeClass names (a trailing `*` matches a prefix) whose pods are never injected. */
  sandboxRuntimeClasses: readonly string[];
}

export const defaultSettings: InjectionSettings = {
  lxcfsRoot: DEFAULT_LXCFS_ROOT,
  files: DEFAULT_FILES,
  sandboxRuntimeClasses: DEFAULT_SANDBOX_RUNTIME_CLASSES,
};

/** `meminfo` for `/proc/meminfo`, `online` for `/sys/devices/system/cpu/online`. */
export function shortName(file: LxcfsFile): string {
  return posix.basename(file);
}

/**
 * Resolves one file given by short name (`meminfo`) or path (`/proc/meminfo`, `proc/meminfo`) among
 * `candidates`; undefined when it is not one of them.
 */
export function resolveFile(name: string, candidates: readonly LxcfsFile[]): LxcfsFile | undefined {
  const trimmed = name.trim();
  const asPath = posix.normalize('/' + trimmed);
  return candidates.find((file) => file === asPath || shortName(file) === trimmed);
}

export function describeAllowed(candidates: readonly LxcfsFile[]): string {
  return candidates.map(shortName).join(', ');
}

/** Splits a comma-separated list, dropping blanks and repeats. */
export function splitList(value: string): string[] {
  return [
    ...new Set(
      value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ];
}

export function parseSettings(input: {
  lxcfsRoot?: string;
  files?: string;
  sandboxRuntimeClasses?: string;
}): InjectionSettings {
  const lxcfsRoot = parseLxcfsRoot(input.lxcfsRoot ?? DEFAULT_LXCFS_ROOT);
  const files = input.files === undefined ? DEFAULT_FILES : parseFileList(input.files);
  const sandboxRuntimeClasses =
    input.sandboxRuntimeClasses === undefined
      ? DEFAULT_SANDBOX_RUNTIME_CLASSES
      : parseRuntimeClassList(input.sandboxRuntimeClasses);
  return { lxcfsRoot, files, sandboxRuntimeClasses };
}

const RUNTIME_CLASS_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$|^[a-z0-9][-a-z0-9.]*\*$/;

/** Comma-separated RuntimeClass names, each optionally ending in `*`; empty means none. Throws InvalidValue. */
export function parseRuntimeClassList(value: string): string[] {
  const names = splitList(value);
  if (!names.every((name) => RUNTIME_CLASS_PATTERN.test(name) && name.length <= 253)) {
    throw new InvalidValue(
      'the list of sandbox RuntimeClasses',
      value,
      'comma-separated RuntimeClass names (lower-case letters, digits, "-" and "."), each may end in * to match a prefix; "" for none',
    );
  }
  return names;
}

/** True when `runtimeClassName` is one of `classes` (or starts with one ending in `*`). */
export function isSandboxRuntime(runtimeClassName: unknown, classes: readonly string[]): boolean {
  if (typeof runtimeClassName !== 'string') return false;
  return classes.some((c) =>
    c.endsWith('*') ? runtimeClassName.startsWith(c.slice(0, -1)) : runtimeClassName === c,
  );
}

/** The lxcfs root, normalised (no trailing slash); throws InvalidValue for anything pods cannot mount from. */
export function parseLxcfsRoot(value: string): string {
  const normalised = posix.normalize(value).replace(/(.)\/+$/, '$1');
  if (!posix.isAbsolute(value) || value.split('/').includes('..') || normalised === '/') {
    throw new InvalidValue(
      'the lxcfs root',
      value,
      `an absolute directory such as ${DEFAULT_LXCFS_ROOT}, not / and without ".."`,
    );
  }
  return normalised;
}

/** Comma-separated files by short name or path, in ALLOWED_FILES order; throws InvalidValue naming the allowed ones. */
export function parseFileList(value: string): LxcfsFile[] {
  const names = splitList(value);
  const unknown = names.filter((n) => resolveFile(n, ALLOWED_FILES) === undefined);
  if (names.length === 0 || unknown.length > 0) {
    throw new InvalidValue(
      'the list of lxcfs files',
      value,
      `a comma-separated list of ${describeAllowed(ALLOWED_FILES)} (lxcfs serves only these, and runc refuses other /proc files)`,
    );
  }
  const chosen = new Set(names.map((n) => resolveFile(n, ALLOWED_FILES)));
  // Keep ALLOWED_FILES order so the same set always yields the same volumes and patch.
  return ALLOWED_FILES.filter((file) => chosen.has(file));
}
