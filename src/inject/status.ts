// The `lxcfs-webhook.io/status` annotation: what each container got and what was skipped and why, so
// operators (and `kubectl get pod -o yaml`) can see what a pod should have. Compact JSON with a stable
// key order so that an unchanged pod yields the identical string (idempotence).
import type { LxcfsFile } from '../config/defaults.js';
import type { ContainerPlan, FileSkipReason } from './plan.js';

export interface ContainerStatus {
  injected: LxcfsFile[];
  skipped?: Partial<Record<LxcfsFile, FileSkipReason>>;
}

export interface InjectionStatus {
  containers: Record<string, ContainerStatus>;
  /** Set when the whole pod was left without mounts for a reason its owner should see (no containers then). */
  skipped?: { reason: string; message: string };
}

/** The status of a pod left without mounts: the reason and the full message, which a warning may cut. */
export function skippedStatus(reason: string, message: string): InjectionStatus {
  return { containers: {}, skipped: { reason, message } };
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
