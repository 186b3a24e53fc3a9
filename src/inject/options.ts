// Reads a pod's opt-out labels and annotations (ours and other injectors' opt-outs) into the options the
// planner uses. Pure. A value we cannot understand never guesses: the pod is left unchanged and one
// warning per bad annotation names the annotation, the value and what is expected (E_ANNOTATION).
import { clip } from '../bounded.js';
import {
  ANNOTATIONS,
  BOOLEAN_WORDS,
  MIRROR_POD_ANNOTATION,
  OPT_OUT_ANNOTATIONS,
  POD_LABEL,
  POD_LABEL_DISABLED,
  USER_NAMESPACE_SKIP,
  type LxcfsFile,
} from '../config/defaults.js';
import {
  describeAllowed,
  isSandboxRuntime,
  resolveFile,
  splitList,
  type InjectionSettings,
} from './settings.js';
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
  | 'mirror-pod'
  | 'other-injector'
  | 'sandboxed-runtime'
  | 'user-namespace'
  /** The patch would make the pod too large to store (MAX_PATCHED_POD_BYTES). */
  | 'too-large';

export type PodDecision =
  | { inject: true; options: PodOptions }
  /** `problems`: what to warn about, one line each (a bad annotation each, or the other injector). */
  | { inject: false; reason: PodSkipReason; message: string; problems?: string[] };

/**
 * What a bad annotation value is reported as: the annotation, the value, what is expected. The value
 * is clipped: it is repeated in the status annotation, which must not grow with it.
 */
function expected(key: string, value: string, what: string): string {
  return `annotation ${key} has value "${clip(value)}"; expected ${what}`;
}

const BOOLEAN_EXPECTED = `${BOOLEAN_WORDS.true.join(', ')} or ${BOOLEAN_WORDS.false.join(', ')} (any case)`;

/** One boolean annotation: its value, undefined when absent, or the problem with it. */
function readBoolean(
  annotations: Record<string, string>,
  key: string,
): boolean | undefined | { problem: string } {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if ((BOOLEAN_WORDS.true as readonly string[]).includes(value)) return true;
  if ((BOOLEAN_WORDS.false as readonly string[]).includes(value)) return false;
  return { problem: expected(key, raw, BOOLEAN_EXPECTED) };
}

/** Decides whether a pod gets injected at all, and with which options. */
export function decidePod(pod: Pod, settings: InjectionSettings): PodDecision {
  const labels = stringMap(pod.metadata?.labels);
  const annotations = stringMap(pod.metadata?.annotations);
  const spec = pod.spec ?? {};

  if (annotations[MIRROR_POD_ANNOTATION] !== undefined) {
    return {
      inject: false,
      reason: 'mirror-pod',
      message: 'mirror pod of a static pod; left unchanged',
    };
  }
  if (spec.os?.name === 'windows' || spec.nodeSelector?.['kubernetes.io/os'] === 'windows') {
    return {
      inject: false,
      reason: 'windows',
      message: 'Windows pod; lxcfs serves Linux nodes only',
    };
  }
  if (spec.hostPID === true) {
    return {
      inject: false,
      reason: 'host-pid',
      message: 'hostPID pod; lxcfs would show it the node anyway',
    };
  }
  if (labels[POD_LABEL] === POD_LABEL_DISABLED) {
    return {
      inject: false,
      reason: 'opted-out',
      message: `label ${POD_LABEL}=${POD_LABEL_DISABLED}`,
    };
  }
  // Every annotation is read before deciding, so each bad one is reported, not only the first. An
  // opt-out wins over any problem: its owner asked for the pod to be left alone, and it is.
  const problems: string[] = [];
  for (const key of OPT_OUT_ANNOTATIONS) {
    const value = readBoolean(annotations, key);
    if (value === false)
      return {
        inject: false,
        reason: 'opted-out',
        message: `annotation ${key}: "${clip(annotations[key]!)}"`,
      };
    if (typeof value === 'object') problems.push(value.problem);
  }
  if (isSandboxRuntime(spec.runtimeClassName, settings.sandboxRuntimeClasses)) {
    return {
      inject: false,
      reason: 'sandboxed-runtime',
      message: `runtimeClassName ${String(spec.runtimeClassName)} gives the pod its own kernel or /proc; lxcfs is not used there`,
    };
  }
  if (spec.hostUsers === false) {
    // USER_NAMESPACE_SKIP in defaults.ts says why: the container would not start.
    const message = USER_NAMESPACE_SKIP;
    return { inject: false, reason: 'user-namespace', message, problems: [message] };
  }
  const options = readOptions(annotations, settings, problems);
  if (problems.length > 0) {
    return {
      inject: false,
      reason: 'invalid-annotation',
      message: `${problems.join('; ')}; nothing mounted`,
      problems: problems.map((p) => `${p}; nothing mounted`),
    };
  }
  return { inject: true, options };
}

function readOptions(
  annotations: Record<string, string>,
  settings: InjectionSettings,
  problems: string[],
): PodOptions {
  const init = readBoolean(annotations, ANNOTATIONS.includeInitContainers);
  if (typeof init === 'object') problems.push(init.problem);
  const files = readFiles(annotations[ANNOTATIONS.files], settings.files);
  if (typeof files === 'string') problems.push(files);
  return {
    files: typeof files === 'string' ? settings.files : files,
    excludedContainers: new Set(splitList(annotations[ANNOTATIONS.excludeContainers] ?? '')),
    includeInitContainers: init === true,
  };
}

/** The annotation can only narrow the operator's file set, never widen it. A string is the problem with it. */
function readFiles(
  value: string | undefined,
  configured: readonly LxcfsFile[],
): readonly LxcfsFile[] | string {
  if (value === undefined) return configured;
  const names = splitList(value);
  const chosen = names.map((name) => resolveFile(name, configured));
  if (names.length === 0 || chosen.includes(undefined)) {
    return expected(
      ANNOTATIONS.files,
      value,
      `a comma-separated subset of ${describeAllowed(configured)}`,
    );
  }
  return configured.filter((file) => chosen.includes(file));
}
