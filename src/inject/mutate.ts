// The one mutation function. The webhook, the `inject` CLI and the golden tests all call `mutatePod`,
// so a pod is injected the same way whichever door it comes through.
import { clip } from '../bounded.js';
import {
  ANNOTATIONS,
  SHARED_PID_NAMESPACE_WARNING,
  TOTAL_ANNOTATIONS_MAX_BYTES,
  WARNING_MAX_CHARS,
} from '../config/defaults.js';
import { describeForeign, recogniseForeign } from './foreign.js';
import { decidePod, type PodDecision, type PodSkipReason } from './options.js';
import { annotationPatch, buildPatch, type JsonPatchOperation } from './patch.js';
import {
  planEphemeralUpdate,
  planPodCreate,
  unknownExcludedNames,
  type FileSkipReason,
  type InjectionPlan,
} from './plan.js';
import { stringMap, type Pod } from './pod.js';
import type { InjectionSettings } from './settings.js';
import { annotationRoom, PodSizeCheck } from './size.js';
import { fitStatus, skippedStatus, statusOf, type InjectionStatus } from './status.js';

export interface MutationRequest {
  pod: Pod;
  settings: InjectionSettings;
  /** Set for an UPDATE of pods/ephemeralcontainers (`kubectl debug`): the pod before the update. */
  ephemeralUpdateOf?: Pod;
}

export interface MutationOutcome {
  /** `injected`: the patch adds mounts; `unchanged`: nothing to add; `skipped`: the pod is left alone. */
  result: 'injected' | 'unchanged' | 'skipped';
  podSkipReason?: PodSkipReason;
  mountsAdded: number;
  /** Distinct files the patch mounts, and how many containers get mounts. */
  filesAdded: number;
  containersChanged: number;
  fileSkips: Partial<Record<FileSkipReason, number>>;
}

export interface MutationResult {
  /** RFC 6902 operations against the pod as given; empty when nothing changes. */
  patch: JsonPatchOperation[];
  /** Short, human-readable, returned to the user by the API server (kubectl prints them). */
  warnings: string[];
  outcome: MutationOutcome;
}

/**
 * Pod skips written to the status annotation, because the owner cannot tell them from a webhook that
 * was never called. Opt-outs, mirror, Windows and hostPID pods stay untouched: nothing is written.
 */
const RECORDED_POD_SKIPS: ReadonlySet<PodSkipReason> = new Set([
  'invalid-annotation',
  'other-injector',
  'sandboxed-runtime',
  'user-namespace',
]);

/** Skips that the user asked for: recorded in the status, not worth a warning. */
const REQUESTED_SKIPS: ReadonlySet<FileSkipReason> = new Set(['excluded', 'init-container']);

function warning(text: string): string {
  return clip(`lxcfs: ${text}`, WARNING_MAX_CHARS);
}

const SKIP_EXPLANATIONS: Record<FileSkipReason, string> = {
  excluded: 'excluded by annotation',
  'init-container': 'init container',
  'mount-path-conflict': 'already mounts something there',
  'volume-name-conflict': 'pod has another volume of the same name',
  'no-volume': 'pod has no lxcfs volume to reuse',
};

function describePlan(plan: InjectionPlan): {
  warnings: string[];
  fileSkips: MutationOutcome['fileSkips'];
} {
  const warnings: string[] = [];
  const fileSkips: MutationOutcome['fileSkips'] = {};
  for (const container of plan.containers) {
    const byReason = new Map<FileSkipReason, string[]>();
    for (const [file, reason] of container.skipped) {
      fileSkips[reason] = (fileSkips[reason] ?? 0) + 1;
      byReason.set(reason, [...(byReason.get(reason) ?? []), file]);
    }
    for (const [reason, files] of byReason) {
      if (REQUESTED_SKIPS.has(reason)) continue;
      // Reason first: a long file list is what gets cut at the length limit.
      warnings.push(
        warning(
          `container "${container.name}": ${SKIP_EXPLANATIONS[reason]}; not mounted: ${files.join(', ')}`,
        ),
      );
    }
  }
  return { warnings, fileSkips };
}

/**
 * decidePod, then: a pod that already carries another injector's lxcfs mounts (or another root's of
 * ours) gets none of ours, reported once with the injector named. Ours on top of theirs would mix two
 * lxcfs views in one pod, and only the pod's owner can say which one it should have.
 */
function podDecision(pod: Pod, settings: InjectionSettings): PodDecision {
  const decision = decidePod(pod, settings);
  if (!decision.inject) return decision;
  const foreign = recogniseForeign(pod, settings.lxcfsRoot);
  if (foreign === undefined) return decision;
  const message = describeForeign(foreign);
  return { inject: false, reason: 'other-injector', message, problems: [message] };
}

/**
 * Our status annotation as a patch for `size.pod` beside `otherOps`, in the form the pod's other
 * annotations and its size leave room for (see fitStatus and PodSizeCheck); a warning says when it was
 * shortened or left out.
 */
function statusPatch(
  size: PodSizeCheck,
  status: InjectionStatus,
  otherOps: JsonPatchOperation[],
  warnings: string[],
): JsonPatchOperation[] {
  const { pod } = size;
  const fit = fitStatus(
    status,
    annotationRoom(stringMap(pod.metadata?.annotations), ANNOTATIONS.status),
  );
  if (fit.form === 'none') {
    warnings.push(
      warning(
        `status annotation ${ANNOTATIONS.status} left out: the pod's annotations leave no room under ${ANNOTATIONS_LIMIT_KIB} KiB`,
      ),
    );
    return [];
  }
  if (fit.form === 'short') {
    warnings.push(
      warning(
        `status annotation ${ANNOTATIONS.status} shortened to counts: the full one (${kib(fit.fullBytes)} KiB) would not fit in ${Math.floor(fit.allowedBytes / 1024)} KiB`,
      ),
    );
  }
  const ops = annotationPatch(pod, ANNOTATIONS.status, fit.value);
  if (size.fits([...otherOps, ...ops])) return ops;
  warnings.push(
    warning(
      `status annotation ${ANNOTATIONS.status} left out: the pod is near the size the API server can store`,
    ),
  );
  return [];
}

const ANNOTATIONS_LIMIT_KIB = TOTAL_ANNOTATIONS_MAX_BYTES / 1024;
const kib = (bytes: number): number => Math.ceil(bytes / 1024);

const skippedOutcome = (reason: PodSkipReason): MutationOutcome => ({
  result: 'skipped',
  podSkipReason: reason,
  mountsAdded: 0,
  filesAdded: 0,
  containersChanged: 0,
  fileSkips: {},
});

export function mutatePod(request: MutationRequest): MutationResult {
  const { pod, settings, ephemeralUpdateOf } = request;
  const size = new PodSizeCheck(pod);
  const decision = podDecision(pod, settings);
  if (!decision.inject) {
    // Asked-for opt-outs and pods we never touch are silent; the rest get one warning per problem.
    const warnings = (decision.problems ?? []).map((problem) => warning(problem));
    const recorded = ephemeralUpdateOf === undefined && RECORDED_POD_SKIPS.has(decision.reason);
    return {
      patch: recorded
        ? statusPatch(size, skippedStatus(decision.reason, decision.message), [], warnings)
        : [],
      warnings,
      outcome: skippedOutcome(decision.reason),
    };
  }

  const plan =
    ephemeralUpdateOf === undefined
      ? planPodCreate(pod, settings.lxcfsRoot, decision.options)
      : planEphemeralUpdate(pod, ephemeralUpdateOf, settings.lxcfsRoot, decision.options);
  const mountOps = buildPatch(pod, plan);
  const changed = plan.containers.filter((c) => c.add.length > 0);
  if (!size.fits(mountOps)) {
    // Left alone rather than refused by etcd later because of us; the pod starts without lxcfs.
    const message = `not injected: mounts for ${changed.length} containers would make this ${kib(size.podBytes)} KiB pod too large to store`;
    return { patch: [], warnings: [warning(message)], outcome: skippedOutcome('too-large') };
  }

  const { warnings, fileSkips } = describePlan(plan);
  // The ephemeralcontainers subresource drops every change but the new containers, so the status
  // annotation is only written at creation.
  const patch =
    ephemeralUpdateOf === undefined && plan.containers.length > 0
      ? [...mountOps, ...statusPatch(size, statusOf(plan.containers), mountOps, warnings)]
      : mountOps;

  if (
    pod.spec?.shareProcessNamespace === true &&
    plan.containers.some((c) => c.injected.length > 0)
  ) {
    warnings.push(warning(SHARED_PID_NAMESPACE_WARNING));
  }
  for (const name of unknownExcludedNames(pod, decision.options)) {
    warnings.push(
      warning(
        `annotation ${ANNOTATIONS.excludeContainers} names "${name}", which the pod does not have`,
      ),
    );
  }
  const mountsAdded = changed.reduce((sum, c) => sum + c.add.length, 0);
  const filesAdded = new Set(changed.flatMap((c) => c.add.map((m) => m.mountPath))).size;
  return {
    patch,
    warnings,
    outcome: {
      result: mountsAdded > 0 ? 'injected' : 'unchanged',
      mountsAdded,
      filesAdded,
      containersChanged: changed.length,
      fileSkips,
    },
  };
}
