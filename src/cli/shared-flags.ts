// Flags several subcommands share, declared once so they read and behave the same in each.
import {
  ALLOWED_FILES,
  DEFAULT_FILES,
  DEFAULT_FUSE_MOUNT,
  DEFAULT_LXCFS_ROOT,
  DEFAULT_PROC,
  DEFAULT_REMOUNT_HELPER,
  DEFAULT_SANDBOX_RUNTIME_CLASSES,
} from '../config/defaults.js';
import { describeAllowed, type InjectionSettings } from '../inject/settings.js';
import type { FlagValues } from './flags.js';
import { lxcfsFiles, lxcfsRoot, path, runtimeClasses } from './values.js';

const optionalFiles = ALLOWED_FILES.filter((file) => !DEFAULT_FILES.includes(file));

/** What is injected: `serve`, `inject` and `docker-args`. */
export const injectionFlags = {
  'lxcfs-root': {
    kind: lxcfsRoot,
    default: DEFAULT_LXCFS_ROOT,
    help: "host directory lxcfs serves its files under: the node agent's --lxcfs-root",
  },
  files: {
    kind: lxcfsFiles,
    default: DEFAULT_FILES,
    help: `comma-separated files to mount, by name (meminfo) or path (/proc/meminfo); also allowed: ${describeAllowed(optionalFiles)}`,
  },
} as const;

/** The pod rules beyond what is mounted: `serve`, `inject` and `audit` (not `docker-args`: no pods there). */
export const podRuleFlags = {
  ...injectionFlags,
  'sandbox-runtime-classes': {
    kind: runtimeClasses,
    default: DEFAULT_SANDBOX_RUNTIME_CLASSES,
    help:
      'comma-separated RuntimeClass names whose pods are never injected (their own kernel or /proc); ' +
      'a trailing * matches a prefix; "" for none',
  },
} as const;

export function settingsFrom(
  values: FlagValues<typeof injectionFlags> & { 'sandbox-runtime-classes'?: readonly string[] },
): InjectionSettings {
  return {
    lxcfsRoot: values['lxcfs-root'],
    files: values.files,
    sandboxRuntimeClasses: values['sandbox-runtime-classes'] ?? DEFAULT_SANDBOX_RUNTIME_CLASSES,
  };
}

/** Where lxcfs and its anchor live on the node: `agent` and `check node`, which must agree. */
export const nodeFlags = {
  'lxcfs-root': {
    kind: lxcfsRoot,
    default: DEFAULT_LXCFS_ROOT,
    help: 'the anchor directory pods mount the lxcfs files from',
  },
  'fuse-mount': {
    kind: path('DIR'),
    default: DEFAULT_FUSE_MOUNT,
    help: 'where lxcfs itself mounts, private to the agent',
  },
  proc: { kind: path('DIR'), default: DEFAULT_PROC, help: "the host's procfs" },
  'remount-helper': {
    kind: path('FILE'),
    default: DEFAULT_REMOUNT_HELPER,
    help: 'the native remount helper',
  },
} as const;
