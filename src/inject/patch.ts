// Turns a plan into RFC 6902 JSON Patch operations against the pod as it was received. The API server
// applies them with strict semantics, so: a missing array or map is added whole (an `add` to
// `/spec/volumes/-` fails when `volumes` is absent), existing lists only get appended to (never
// replaced: other webhooks may have written them), and map keys are escaped.
import { isObject, type Pod } from './pod.js';
import type { InjectionPlan } from './plan.js';

export type JsonPatchOperation =
  { op: 'add'; path: string; value: unknown } | { op: 'replace'; path: string; value: unknown };

/** RFC 6901: `~` becomes `~0` first, then `/` becomes `~1`. */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function appendAll(
  ops: JsonPatchOperation[],
  path: string,
  current: unknown,
  items: unknown[],
): void {
  if (items.length === 0) return;
  if (Array.isArray(current)) {
    for (const value of items) ops.push({ op: 'add', path: `${path}/-`, value });
  } else {
    ops.push({ op: 'add', path, value: items });
  }
}

/** The operation that sets annotation `key` to `value`; none when it already has that value. */
export function annotationPatch(pod: Pod, key: string, value: string): JsonPatchOperation[] {
  const metadata = pod.metadata;
  if (!isObject(metadata))
    return [{ op: 'add', path: '/metadata', value: { annotations: { [key]: value } } }];
  if (!isObject(metadata.annotations))
    return [{ op: 'add', path: '/metadata/annotations', value: { [key]: value } }];
  if (metadata.annotations[key] === value) return [];
  const op = key in metadata.annotations ? 'replace' : 'add';
  return [{ op, path: `/metadata/annotations/${escapePointerToken(key)}`, value }];
}

/** The volumes and mounts of `plan`; the status annotation is added apart (annotationPatch). */
export function buildPatch(pod: Pod, plan: InjectionPlan): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  appendAll(ops, '/spec/volumes', pod.spec?.volumes, plan.addVolumes);
  for (const container of plan.containers) {
    const list: unknown = pod.spec?.[container.list];
    const entry: unknown = Array.isArray(list) ? list[container.index] : undefined;
    const current = isObject(entry) ? entry.volumeMounts : undefined;
    appendAll(
      ops,
      `/spec/${container.list}/${container.index}/volumeMounts`,
      current,
      container.add,
    );
  }
  return ops;
}
