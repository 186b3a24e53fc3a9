// The AdmissionReview contract, without HTTP: takes a decoded request body and returns data: either
// the AdmissionReview to answer with, or why the body is no review this webhook can answer; and one
// log record either way. Pure, so every branch is tested with plain objects; the transport (server.ts)
// turns the result into HTTP.
//
// The webhook never denies: every answer it can give is `allowed: true`, with or without a patch. Only
// a body that is not an AdmissionReview at all is invalid (the API server never sends one).
import { isObject, type Pod } from '../inject/pod.js';
import { mutatePod, type MutationOutcome } from '../inject/mutate.js';
import type { InjectionSettings } from '../inject/settings.js';
import { boundWarnings, clip } from '../bounded.js';

export const ADMISSION_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;

/** Why a well-formed review was answered without looking at a pod. */
export type IgnoreReason = 'not-a-pod' | 'operation' | 'no-object' | 'internal-error';

/** One line per review: identifies the object, never contains it; every echoed string is clipped. */
export interface ReviewLog {
  uid?: string;
  apiVersion?: string;
  operation?: string;
  namespace?: string;
  pod?: string;
  dryRun?: boolean;
  result: MutationOutcome['result'] | 'ignored' | 'rejected';
  reason?: string;
  mountsAdded?: number;
  fileSkips?: MutationOutcome['fileSkips'];
  patchOperations?: number;
  /** Why the request was rejected: text from the request, clipped. */
  error?: string;
  /** A bug of ours while deciding: the error itself, with its stack. */
  err?: unknown;
}

export type ReviewResult =
  /** The AdmissionReview to send back: always allowed, with or without a patch. */
  | { kind: 'answer'; review: Record<string, unknown>; log: ReviewLog }
  /** The body is no AdmissionReview this webhook can answer; `problem` says why and what is expected. */
  | { kind: 'invalid'; problem: string; log: ReviewLog };

function invalid(problem: string): ReviewResult {
  return { kind: 'invalid', problem, log: { result: 'rejected', error: problem } };
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
/** A request string for the log: real ones are short, a hostile one must not make a huge line. */
const logged = (value: unknown): string | undefined =>
  typeof value === 'string' ? clip(value) : undefined;

/** `name`, or `generateName*` for controller-made pods that have no name yet. */
function podName(pod: Pod, request: Record<string, unknown>): string | undefined {
  const meta = pod.metadata;
  const name =
    str(meta?.name) ||
    (str(meta?.generateName) ? `${meta?.generateName}*` : undefined) ||
    str(request.name);
  return name === undefined ? undefined : clip(name);
}

function isPodRequest(request: Record<string, unknown>): boolean {
  const resource = request.resource;
  if (isObject(resource)) return resource.group === '' && resource.resource === 'pods';
  const kind = request.kind;
  return isObject(kind) && kind.group === '' && kind.kind === 'Pod';
}

export function reviewAdmission(body: unknown, settings: InjectionSettings): ReviewResult {
  if (!isObject(body) || body.kind !== 'AdmissionReview') {
    return invalid(
      'body is not an AdmissionReview: expected a JSON object with "kind": "AdmissionReview"',
    );
  }
  const apiVersion = str(body.apiVersion);
  if (!ADMISSION_VERSIONS.some((v) => v === apiVersion)) {
    return invalid(
      `apiVersion "${clip(String(body.apiVersion))}" is not supported; expected one of ${ADMISSION_VERSIONS.join(', ')}`,
    );
  }
  const request = body.request;
  if (!isObject(request)) return invalid('AdmissionReview has no "request" object');
  const uid = str(request.uid);
  if (!uid) return invalid('request.uid is missing; the response must echo it');

  const operation = str(request.operation);
  const subResource = str(request.subResource) ?? '';
  // The response echoes the uid whole (the API server matches it); the log gets a clipped copy.
  const log: ReviewLog = {
    uid: clip(uid),
    apiVersion,
    operation: logged(operation),
    namespace: logged(request.namespace),
    dryRun: request.dryRun === true,
    result: 'ignored',
  };
  const answer = (response: Record<string, unknown>): ReviewResult => ({
    kind: 'answer',
    review: { apiVersion, kind: 'AdmissionReview', response: { uid, allowed: true, ...response } },
    log,
  });

  if (!isPodRequest(request)) return { ...answer({}), log: { ...log, reason: 'not-a-pod' } };
  const isCreate = operation === 'CREATE' && subResource === '';
  const isDebug = operation === 'UPDATE' && subResource === 'ephemeralcontainers';
  if (!isCreate && !isDebug) return { ...answer({}), log: { ...log, reason: 'operation' } };
  const pod = request.object;
  if (!isObject(pod)) return { ...answer({}), log: { ...log, reason: 'no-object' } };
  log.pod = podName(pod, request);

  try {
    const oldPod = isObject(request.oldObject) ? request.oldObject : {};
    const result = mutatePod({ pod, settings, ...(isDebug ? { ephemeralUpdateOf: oldPod } : {}) });
    Object.assign(log, {
      result: result.outcome.result,
      reason: result.outcome.podSkipReason,
      mountsAdded: result.outcome.mountsAdded,
      fileSkips: result.outcome.fileSkips,
      patchOperations: result.patch.length,
    });
    return answer({
      ...(result.patch.length > 0
        ? {
            patchType: 'JSONPatch',
            patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'),
          }
        : {}),
      ...(result.warnings.length > 0 ? { warnings: boundWarnings(result.warnings) } : {}),
    });
  } catch (err) {
    // A bug of ours must not block a pod: allow it unchanged and say why in the log.
    return {
      ...answer({}),
      log: { ...log, result: 'ignored', reason: 'internal-error', err },
    };
  }
}
