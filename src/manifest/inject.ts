// `inject` without the I/O: runs the injection rules (mutatePod, the same function the webhook uses)
// on every pod and pod template in a parsed manifest file, applies each patch to the YAML in place,
// and says what happened to each object.
import { ANNOTATIONS } from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import { mutatePod, type MutationOutcome } from '../inject/mutate.js';
import type { PodSkipReason } from '../inject/options.js';
import { isObject } from '../inject/pod.js';
import type { InjectionSettings } from '../inject/settings.js';
import { parseStatus, type InjectionStatus } from '../inject/status.js';
import { describePath, describeValue, type PathTokens } from './path.js';
import type { ManifestDocument, ManifestFile } from './yaml-documents.js';
import { applyPatch } from './yaml-patch.js';
import { describeObject, findPods, type FoundObject } from './workloads.js';

export interface ObjectReport {
  /** `deployment.apps/web (ns shop)` */
  object: string;
  /** `injected 8 files into 2 containers`, `skipped: opted out`, `unchanged: already injected`, ... */
  summary: string;
  /** mutatePod's warnings, as the API server would show them. */
  warnings: string[];
}

const POD_SKIPS: Record<PodSkipReason, string> = {
  'opted-out': 'skipped: opted out',
  'invalid-annotation': 'skipped: an lxcfs annotation has a value it cannot use (see warning)',
  windows: 'skipped: Windows pod',
  'host-pid': 'skipped: hostPID pod',
  'mirror-pod': 'skipped: mirror pod',
  'other-injector': "skipped: it has another injector's lxcfs volumes (see warning)",
  'sandboxed-runtime': 'skipped: sandboxed RuntimeClass (its own kernel or /proc)',
  'user-namespace': 'skipped: hostUsers: false (see warning)',
  'too-large': 'skipped: too large to store with the mounts added (see warning)',
};

/** Injects every pod in `file` in place (its documents are marked for rewriting) and reports on each object. */
export function injectManifests(file: ManifestFile, settings: InjectionSettings): ObjectReport[] {
  return file.documents.flatMap((document) =>
    within(`${file.name}, document ${document.number} (line ${document.line})`, () =>
      injectDocument(document, settings),
    ),
  );
}

/** Runs `fn`, prefixing the message of an error the user must fix with where it happened. */
function within<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof LxcfsWebhookError) throw err.within(where);
    throw err;
  }
}

function injectDocument(document: ManifestDocument, settings: InjectionSettings): ObjectReport[] {
  let object: unknown;
  try {
    object = document.doc.toJS();
  } catch (err) {
    // The yaml library refuses documents whose aliases expand into too much ("billion laughs").
    throw new LxcfsWebhookError('E_MANIFEST', (err as Error).message, { cause: err });
  }
  if (object === null || object === undefined) return []; // an empty document, e.g. after a trailing `---`
  if (!isObject(object)) {
    throw new LxcfsWebhookError(
      'E_MANIFEST',
      `is ${describeValue(object)}, not a Kubernetes object (a mapping with apiVersion and kind)`,
    );
  }
  return findPods(object).map((found) => {
    const name = describeObject(found.ref);
    if (found.found !== 'pod') return { object: name, summary: skipSummary(found), warnings: [] };
    const result = mutatePod({ pod: found.pod, settings });
    within(name, () => applyPatch(document.doc, found.path, result.patch));
    if (result.patch.length > 0) document.rewrite = true;
    // The status annotation, as it is after the patch, lists what every container has.
    const status = parseStatus(
      stringAt(document, [...found.path, 'metadata', 'annotations', ANNOTATIONS.status]),
    );
    return {
      object: name,
      summary: outcomeSummary(result.outcome, status),
      warnings: result.warnings,
    };
  });
}

function stringAt(document: ManifestDocument, path: PathTokens): string | undefined {
  const value: unknown = document.doc.getIn(path);
  return typeof value === 'string' ? value : undefined;
}

function skipSummary(found: Exclude<FoundObject, { found: 'pod' }>): string {
  return found.found === 'no-pod'
    ? `skipped: no pod template at ${describePath(found.path)}`
    : 'skipped: not a workload';
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

function outcomeSummary(outcome: MutationOutcome, status: InjectionStatus | undefined): string {
  if (outcome.podSkipReason !== undefined) return POD_SKIPS[outcome.podSkipReason];
  const skips = Object.entries(outcome.fileSkips);
  const total = skips.reduce((sum, [, count]) => sum + count, 0);
  const reasons =
    skips.length === 1
      ? skips[0]?.[0]
      : skips.map(([reason, count]) => `${reason} ${count}`).join(', ');
  const skipped = total === 0 ? '' : ` (${plural(total, 'mount')} skipped: ${reasons})`;
  if (outcome.result === 'injected') {
    return `injected ${plural(outcome.filesAdded, 'file')} into ${plural(outcome.containersChanged, 'container')}${skipped}`;
  }
  const hasMounts = Object.values(status?.containers ?? {}).some(
    (container) => container.injected.length > 0,
  );
  return `unchanged: ${hasMounts ? 'already injected' : 'nothing to add'}${skipped}`;
}
