// Reads a pod's opt-out labels and our annotations into the options the planner uses. Pure. A value we
// cannot understand never guesses: the pod is left unchanged and the warning names the annotation,
// the value and what is expected.
import { ANNOTATIONS, MIRROR_POD_ANNOTATION, POD_LABEL, POD_LABEL_DISABLED, type LxcfsFile } from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import { describeAllowed, resolveFile, splitList, type InjectionSettings } from './settings.js';
import { stringMap, type Pod } from './pod.js';

export interface PodOptions {
  files: readonly LxcfsFile[];
  excludedContainers: ReadonlySet<string>;
  includeInitContainers: boolean;
}

/** Why a whole pod is left unchanged. Stable strings: they are metric labels and log values. */
export type PodSkipReason =
  | 'opted-out'
  | 'invalid-annotation'
  | 'windows'
  | 'host-pid'
  | 'mirror-pod';

export type PodDecision =
  | { inject: true; options: PodOptions }
  | { inject: false; reason: PodSkipReason; message: string };

const TRUE_VALUES = ['true', 'enabled'];
const FALSE_VALUES = ['false', 'disabled'];
const LEGACY_NO = ['n', 'no', 'false', 'off'];
const LEGACY_YES = ['y', 'yes', 'true', 'on'];

/** An E_ANNOTATION error: it never leaves decidePod, which turns it into a skip with its message. */
function expected(key: string, value: string, what: string): LxcfsWebhookError {
  return new LxcfsWebhookError('E_ANNOTATION', `annotation ${key} has value "${value}"; expected ${what}`);
}

/** Decides whether a pod gets injected at all, and with which options. */
export function decidePod(pod: Pod, settings: InjectionSettings): PodDecision {
  const labels = stringMap(pod.metadata?.labels);
  const annotations = stringMap(pod.metadata?.annotations);
  const spec = pod.spec ?? {};

  if (annotations[MIRROR_POD_ANNOTATION] !== undefined) {
    return { inject: false, reason: 'mirror-pod', message: 'mirror pod of a static pod; left unchanged' };
  }
  if (spec.os?.name === 'windows' || spec.nodeSelector?.['kubernetes.io/os'] === 'windows') {
    return { inject: false, reason: 'windows', message: 'Windows pod; lxcfs serves Linux nodes only' };
  }
  if (spec.hostPID === true) {
    return { inject: false, reason: 'host-pid', message: 'hostPID pod; lxcfs would show it the node anyway' };
  }
  if (labels[POD_LABEL] === POD_LABEL_DISABLED) {
    return { inject: false, reason: 'opted-out', message: `label ${POD_LABEL}=${POD_LABEL_DISABLED}` };
  }
  try {
    if (isOptedOutByAnnotation(annotations)) {
      return { inject: false, reason: 'opted-out', message: 'opted out by annotation' };
    }
    return { inject: true, options: readOptions(annotations, settings) };
  } catch (err) {
    if (err instanceof LxcfsWebhookError && err.code === 'E_ANNOTATION') {
      return { inject: false, reason: 'invalid-annotation', message: `${err.message}; pod left unchanged` };
    }
    throw err;
  }
}

function isOptedOutByAnnotation(annotations: Record<string, string>): boolean {
  const inject = annotations[ANNOTATIONS.inject];
  if (inject !== undefined) {
    const value = inject.trim().toLowerCase();
    if (FALSE_VALUES.includes(value)) return true;
    if (!TRUE_VALUES.includes(value)) throw expected(ANNOTATIONS.inject, inject, '"true" or "false"');
  }
  const legacy = annotations[ANNOTATIONS.legacyMutate];
  if (legacy !== undefined) {
    const value = legacy.trim().toLowerCase();
    if (LEGACY_NO.includes(value)) return true;
    if (!LEGACY_YES.includes(value)) {
      throw expected(ANNOTATIONS.legacyMutate, legacy, `one of ${[...LEGACY_YES, ...LEGACY_NO].join(', ')}`);
    }
  }
  return false;
}

function readOptions(annotations: Record<string, string>, settings: InjectionSettings): PodOptions {
  return {
    files: readFiles(annotations[ANNOTATIONS.files], settings.files),
    excludedContainers: new Set(splitList(annotations[ANNOTATIONS.excludeContainers] ?? '')),
    includeInitContainers: readBoolean(ANNOTATIONS.includeInitContainers, annotations[ANNOTATIONS.includeInitContainers]),
  };
}

/** The annotation can only narrow the operator's file set, never widen it. */
function readFiles(value: string | undefined, configured: readonly LxcfsFile[]): readonly LxcfsFile[] {
  if (value === undefined) return configured;
  const names = splitList(value);
  const chosen = names.map((name) => resolveFile(name, configured));
  if (names.length === 0 || chosen.includes(undefined)) {
    throw expected(ANNOTATIONS.files, value, `a comma-separated subset of ${describeAllowed(configured)}`);
  }
  return configured.filter((file) => chosen.includes(file));
}

function readBoolean(key: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  const normalised = value.trim().toLowerCase();
  if (normalised === 'true') return true;
  if (normalised === 'false') return false;
  throw expected(key, value, '"true" or "false"');
}
