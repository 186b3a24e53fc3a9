// Sizes the way the API server counts them: a pod and a patch as JSON bytes, annotations as key plus
// value bytes. Pure; mutate.ts decides with them whether a patch and our status annotation are given
// (the limits and where they come from: MAX_PATCHED_POD_BYTES, TOTAL_ANNOTATIONS_MAX_BYTES in
// config/defaults.ts).
import { MAX_PATCHED_POD_BYTES, TOTAL_ANNOTATIONS_MAX_BYTES } from '../config/defaults.js';
import type { JsonPatchOperation } from './patch.js';
import type { Pod } from './pod.js';

/** Bytes of `value` as JSON, UTF-8. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '');
}

/**
 * Bytes of `ops` as one JSON array, counted operation by operation so that a huge patch is never
 * serialised whole: counting stops once it passes `stopAbove` (the result is then over it, not exact).
 */
export function patchBytes(ops: readonly JsonPatchOperation[], stopAbove = Infinity): number {
  let total = 2; // [ and ]
  for (const op of ops) {
    total += jsonBytes(op) + 1; // and a comma
    if (total > stopAbove) break;
  }
  return total;
}

/**
 * Whether patches of a pod keep it storable: the pod's JSON plus twice the patch (what we add, and the
 * managedFields entries the API server writes for it) within MAX_PATCHED_POD_BYTES. The pod is measured
 * once, and only when a patch is asked about.
 */
export class PodSizeCheck {
  private measured: number | undefined;
  constructor(readonly pod: Pod) {}

  /** The pod's JSON bytes, measured on first use. */
  get podBytes(): number {
    return (this.measured ??= jsonBytes(this.pod));
  }

  fits(ops: readonly JsonPatchOperation[]): boolean {
    if (ops.length === 0) return true;
    const room = Math.floor((MAX_PATCHED_POD_BYTES - this.podBytes) / 2);
    return patchBytes(ops, room) <= room;
  }
}

/**
 * Bytes the API server counts for `annotations` (ValidateAnnotationsSize: every key and value, in
 * bytes), leaving out `except`, the key we are about to write.
 */
export function annotationBytes(
  annotations: Readonly<Record<string, string>>,
  except?: string,
): number {
  let total = 0;
  for (const [key, value] of Object.entries(annotations)) {
    if (key !== except) total += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  return total;
}

/** Bytes left for the value of annotation `key` before the pod's annotations pass the API server's limit. */
export function annotationRoom(annotations: Readonly<Record<string, string>>, key: string): number {
  return TOTAL_ANNOTATIONS_MAX_BYTES - annotationBytes(annotations, key) - Buffer.byteLength(key);
}
