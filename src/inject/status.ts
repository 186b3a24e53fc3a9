// The `lxcfs-webhook.io/status` annotation: what each container got and what was skipped and why, so
// operators (and `kubectl get pod -o yaml`) can see what a pod should have. Compact JSON with a stable
// key order so that an unchanged pod yields the identical string (idempotence).
//
// It must never make the pod too large for the API server: whatever of the request it repeats is
// clipped, and fitStatus writes it whole, in a short form, or not at all, by the room the pod's other
// annotations leave (TOTAL_ANNOTATIONS_MAX_BYTES, STATUS_MAX_BYTES in config/defaults.ts).
import { clip } from '../bounded.js';
import {
  STATUS_MAX_BYTES,
  TOTAL_ANNOTATIONS_MAX_BYTES,
  type LxcfsFile,
} from '../config/defaults.js';
import type { ContainerPlan, FileSkipReason } from './plan.js';

export interface ContainerStatus {
  injected: LxcfsFile[];
  skipped?: Partial<Record<LxcfsFile, FileSkipReason>>;
}

export interface InjectionStatus {
  containers: Record<string, ContainerStatus>;
  /** Set when the whole pod was left without mounts for a reason its owner should see (no containers then). */
  skipped?: { reason: string; message: string };
  /** Set in the short form: why `containers` (or the skip message) was left out, and what it held. */
  omitted?: string;
}

/** Longest skip message kept in the status: room for several bad annotations, each value clipped to ECHO_MAX_CHARS. */
const STATUS_MESSAGE_MAX_CHARS = 2048;

/** The status of a pod left without mounts: the reason and the message (longer than a warning may be). */
export function skippedStatus(reason: string, message: string): InjectionStatus {
  return { containers: {}, skipped: { reason, message: clip(message, STATUS_MESSAGE_MAX_CHARS) } };
}

export function statusOf(containers: ContainerPlan[]): InjectionStatus {
  const status: InjectionStatus = { containers: {} };
  for (const plan of containers) {
    const entry: ContainerStatus = { injected: plan.injected };
    if (plan.skipped.size > 0) entry.skipped = Object.fromEntries(plan.skipped);
    status.containers[plan.name] = entry;
  }
  return status;
}

export function formatStatus(status: InjectionStatus): string {
  return JSON.stringify(status);
}

const LIMIT_KIB = TOTAL_ANNOTATIONS_MAX_BYTES / 1024;

/** The status without per-container detail or skip message: counts only, a few hundred bytes. */
function shortStatus(status: InjectionStatus): InjectionStatus {
  if (status.skipped) {
    return {
      containers: {},
      skipped: { reason: status.skipped.reason, message: '' },
      omitted: `message left out: the pod's annotations are near the ${LIMIT_KIB} KiB limit`,
    };
  }
  const containers = Object.values(status.containers);
  const withFiles = containers.filter((c) => c.injected.length > 0).length;
  return {
    containers: {},
    omitted: `${containers.length} containers, ${withFiles} with lxcfs files: per-container detail left out to keep the pod's annotations small; see each container's volumeMounts`,
  };
}

export type StatusFit =
  | { form: 'full'; value: string }
  /** `fullBytes` did not fit in `allowedBytes`. */
  | { form: 'short'; value: string; fullBytes: number; allowedBytes: number }
  | { form: 'none'; value?: undefined };

/**
 * The status value to write where `room` bytes are left for it: whole when it fits (and is at most
 * STATUS_MAX_BYTES), else the short form, else nothing.
 */
export function fitStatus(status: InjectionStatus, room: number): StatusFit {
  const full = formatStatus(status);
  const fullBytes = Buffer.byteLength(full);
  const allowedBytes = Math.min(room, STATUS_MAX_BYTES);
  if (fullBytes <= allowedBytes) return { form: 'full', value: full };
  const short = formatStatus(shortStatus(status));
  if (Buffer.byteLength(short) <= room)
    return { form: 'short', value: short, fullBytes, allowedBytes };
  return { form: 'none' };
}

/** Reads an annotation value back; undefined when it is absent or not ours to understand. */
export function parseStatus(value: string | undefined): InjectionStatus | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (typeof parsed === 'object' && parsed !== null && 'containers' in parsed)
      return parsed as InjectionStatus;
  } catch {
    // Someone else's value under our key: treated as absent and overwritten.
  }
  return undefined;
}
