// Where the pod lives in each kind of object `inject` understands: a Pod is its own pod, a workload
// carries a pod template, a `List` holds other objects. Pure: reads the object, returns locations.
//
// Kinds are matched together with their API group, because other APIs reuse the names: a Volcano
// `batch.volcano.sh` Job is not a `batch` Job and has no `spec.template`.
import { LxcfsWebhookError } from '../errors.js';
import { isObject, type Pod } from '../inject/pod.js';
import { describePath, describeValue, type PathTokens } from './path.js';

/** Keyed like kubectl names resource types: `Kind` in the core group, `Kind.group` otherwise. */
const POD_LOCATIONS: Readonly<Record<string, PathTokens>> = {
  Pod: [],
  PodTemplate: ['template'],
  ReplicationController: ['spec', 'template'],
  'Deployment.apps': ['spec', 'template'],
  'StatefulSet.apps': ['spec', 'template'],
  'DaemonSet.apps': ['spec', 'template'],
  'ReplicaSet.apps': ['spec', 'template'],
  'Job.batch': ['spec', 'template'],
  'CronJob.batch': ['spec', 'jobTemplate', 'spec', 'template'],
};

export const SUPPORTED_KINDS = Object.keys(POD_LOCATIONS).map((key) => key.split('.')[0]);

export interface ObjectRef {
  kind: string;
  /** API group, '' for the core group (`apiVersion: v1`). */
  group: string;
  name?: string;
  namespace?: string;
}

export type FoundObject =
  /** `pod` is the Pod or pod template (`{ metadata, spec }`) at `path` from the document root. */
  | { ref: ObjectRef; found: 'pod'; path: PathTokens; pod: Pod }
  /** A workload kind whose template is missing, e.g. a kustomize patch that only sets `replicas`. */
  | { ref: ObjectRef; found: 'no-pod'; path: PathTokens }
  | { ref: ObjectRef; found: 'not-a-workload' };

function manifestError(path: PathTokens, problem: string): LxcfsWebhookError {
  return new LxcfsWebhookError(
    'E_MANIFEST',
    path.length === 0 ? problem : `${describePath(path)} ${problem}`,
  );
}

/**
 * Every object in `object` (itself, or the items of a `List`), with where its pod is. Throws
 * E_MANIFEST for what the API server would refuse to read: objects without apiVersion and kind, and
 * labels or annotations that are not strings (the injection rules read those).
 */
export function findPods(object: Record<string, unknown>, path: PathTokens = []): FoundObject[] {
  const ref = refOf(object, path);
  if (ref.kind === 'List' && ref.group === '') {
    const items = object.items ?? [];
    if (!Array.isArray(items))
      throw manifestError(
        [...path, 'items'],
        `is ${describeValue(items)}; a List needs a list of objects`,
      );
    return items.flatMap((item: unknown, index) => {
      const itemPath = [...path, 'items', String(index)];
      if (!isObject(item))
        throw manifestError(itemPath, `is ${describeValue(item)}, not a Kubernetes object`);
      return findPods(item, itemPath);
    });
  }

  const location = POD_LOCATIONS[ref.group === '' ? ref.kind : `${ref.kind}.${ref.group}`];
  if (location === undefined) return [{ ref, found: 'not-a-workload' }];
  const podPath = [...path, ...location];
  const pod = valueAt(object, location);
  if (!isObject(pod)) return [{ ref, found: 'no-pod', path: podPath }];
  assertStringMaps(pod, podPath);
  return [{ ref, found: 'pod', path: podPath, pod }];
}

function refOf(object: Record<string, unknown>, path: PathTokens): ObjectRef {
  const { apiVersion, kind } = object;
  if (
    typeof apiVersion !== 'string' ||
    typeof kind !== 'string' ||
    apiVersion === '' ||
    kind === ''
  ) {
    throw manifestError(
      path,
      'has no apiVersion or kind; every Kubernetes object needs both (e.g. apiVersion: apps/v1, kind: Deployment)',
    );
  }
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  return {
    kind,
    group: apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '',
    name: text(metadata.name) ?? text(metadata.generateName),
    namespace: text(metadata.namespace),
  };
}

function valueAt(object: Record<string, unknown>, location: PathTokens): unknown {
  let value: unknown = object;
  for (const key of location) value = isObject(value) ? value[key] : undefined;
  return value;
}

/** The API server's rule for labels and annotations; the injection rules rely on it. */
function assertStringMaps(pod: Pod, podPath: PathTokens): void {
  const metadata: unknown = pod.metadata;
  if (metadata === undefined) return;
  if (!isObject(metadata))
    throw manifestError(
      [...podPath, 'metadata'],
      `is ${describeValue(metadata)}; it must be a mapping`,
    );
  for (const field of ['labels', 'annotations']) {
    const map = metadata[field];
    if (map === undefined) continue;
    const mapPath = [...podPath, 'metadata', field];
    if (!isObject(map))
      throw manifestError(mapPath, `is ${describeValue(map)}; it must be a mapping of strings`);
    for (const [key, value] of Object.entries(map)) {
      if (typeof value !== 'string') {
        throw manifestError(
          [...mapPath, key],
          `is ${describeValue(value)}, but ${field} must be strings: put the value in quotes`,
        );
      }
    }
  }
}

/** `deployment.apps/web (ns shop)`, as kubectl names objects. */
export function describeObject(ref: ObjectRef): string {
  const type = ref.group === '' ? ref.kind.toLowerCase() : `${ref.kind.toLowerCase()}.${ref.group}`;
  const namespace = ref.namespace === undefined ? '' : ` (ns ${ref.namespace})`;
  return `${type}/${ref.name ?? '(no name)'}${namespace}`;
}
