// What the operator configures for injection (flags of `serve`, `inject`, `docker-args`), validated
// once at start-up so that a bad value stops the process with a message instead of breaking pods.
import { posix } from 'node:path';
import { ALLOWED_FILES, DEFAULT_FILES, DEFAULT_LXCFS_ROOT, type LxcfsFile } from '../config/defaults.js';
import { InvalidValue } from '../errors.js';

export interface InjectionSettings {
  /** Absolute, normalised host directory the per-file hostPaths are taken from. */
  lxcfsRoot: string;
  /** Container paths to mount, each one of ALLOWED_FILES, in a stable order. */
  files: readonly LxcfsFile[];
}

export const defaultSettings: InjectionSettings = { lxcfsRoot: DEFAULT_LXCFS_ROOT, files: DEFAULT_FILES };

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
  return [...new Set(value.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
}

export function parseSettings(input: { lxcfsRoot?: string; files?: string }): InjectionSettings {
  const lxcfsRoot = parseLxcfsRoot(input.lxcfsRoot ?? DEFAULT_LXCFS_ROOT);
  const files = input.files === undefined ? DEFAULT_FILES : parseFileList(input.files);
  return { lxcfsRoot, files };
}

/** The lxcfs root, normalised (no trailing slash); throws InvalidValue for anything pods cannot mount from. */
export function parseLxcfsRoot(value: string): string {
  const normalised = posix.normalize(value).replace(/(.)\/+$/, '$1');
  if (!posix.isAbsolute(value) || value.split('/').includes('..') || normalised === '/') {
    throw new InvalidValue('the lxcfs root', value, `an absolute directory such as ${DEFAULT_LXCFS_ROOT}, not / and without ".."`);
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
