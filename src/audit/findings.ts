// What is wrong with one running pod that the webhook selects, judged by the webhook's own function:
// `mutatePod` says what it would add to the pod today (nothing, for a pod it injected), and the pod's
// volumes say where the lxcfs files it already has come from. Pure.
import type { LxcfsFile } from '../config/defaults.js';
import { lxcfsMounts, recogniseForeign, type LxcfsMount } from '../inject/foreign.js';
import { mutatePod } from '../inject/mutate.js';
import {
  listOf,
  type Container,
  type ContainerList,
  type Pod,
  type Volume,
  type VolumeMount,
} from '../inject/pod.js';
import type { InjectionSettings } from '../inject/settings.js';
import { normalisedMountPath } from '../inject/volumes.js';
import { pointerTokens } from '../manifest/path.js';

/** Most serious first: a finding of an earlier kind hides the later ones for the same pod. */
export const FINDING_KINDS = [
  'other-injector',
  'other-root',
  'partially-injected',
  'never-injected',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export interface MissingFiles {
  container: string;
  files: LxcfsFile[];
}

export interface ForeignVolume {
  name: string;
  hostPath: string;
}

export interface PodFinding {
  kind: FindingKind;
  /** Per container, the files the webhook would mount if the pod were created now. */
  missing: MissingFiles[];
  /** other-root: the lxcfs roots the pod's files come from instead of the configured one. */
  roots?: string[];
  /** other-injector: the hostPath volumes behind its lxcfs mounts, and the directories above them it also mounts. */
  foreignVolumes?: ForeignVolume[];
}

/** `/spec/containers/0/volumeMounts` or `/spec/containers/0/volumeMounts/-`: mounts the patch adds to one container. */
function missingFrom(pod: Pod, patch: ReturnType<typeof mutatePod>['patch']): MissingFiles[] {
  const byContainer = new Map<string, LxcfsFile[]>();
  for (const op of patch) {
    const [spec, list, index, field] = pointerTokens(op.path);
    if (spec !== 'spec' || field !== 'volumeMounts') continue;
    const container = listOf<Container>(pod.spec?.[list as ContainerList])[Number(index)];
    const name = container?.name ?? `${list}[${index}]`;
    const mounts = (Array.isArray(op.value) ? op.value : [op.value]) as VolumeMount[];
    byContainer.set(name, [
      ...(byContainer.get(name) ?? []),
      ...mounts.map((m) => m.mountPath as LxcfsFile),
    ]);
  }
  return [...byContainer].map(([container, files]) => ({ container, files }));
}

/**
 * Finds what the webhook would change in `pod` (one it selects), or undefined when nothing. `pod` must
 * be a pod as the API server stores it; mutatePod reads only its metadata and spec.
 */
export function examinePod(pod: Pod, settings: InjectionSettings): PodFinding | undefined {
  const result = mutatePod({ pod, settings });
  // Opted out, Windows, hostPID, mirror pod...; a pod with another injector's mounts is skipped by the
  // webhook too (it never stacks mounts on them), but that is what the audit is here to report.
  if (result.outcome.result === 'skipped' && result.outcome.podSkipReason !== 'other-injector')
    return undefined;
  const missing = missingFrom(pod, result.patch);

  const foreign = recogniseForeign(pod, settings.lxcfsRoot);
  if (foreign?.kind === 'other-root') return { kind: 'other-root', missing, roots: foreign.roots };
  if (foreign?.kind === 'other-injector') {
    return { kind: 'other-injector', missing, foreignVolumes: foreignVolumes(pod, foreign.mounts) };
  }
  if (missing.length === 0) return undefined;
  return { kind: lxcfsMounts(pod).length > 0 ? 'partially-injected' : 'never-injected', missing };
}

/**
 * The foreign volumes behind lxcfs mounts, plus hostPath volumes of directories above them (kubeservice's
 * `var-lib-lxc`, cndoit18's `lxcfs-root-parent-dir`): removing the injector must remove those too.
 */
function foreignVolumes(pod: Pod, foreign: LxcfsMount[]): ForeignVolume[] {
  // Host paths compared as paths: `/var/lib/lxc/` is the directory above `/var/lib/lxc/lxcfs/proc/meminfo`.
  // The host's `/` is above everything, and no injector's: a pod mounting it (node exporters) keeps it.
  const hostPath = (v: Volume) => normalisedMountPath(v.hostPath?.path);
  const paths = foreign.map((m) => hostPath(m.volume)!);
  const contains = (dir: string) =>
    dir !== '/' && paths.some((p) => p === dir || p.startsWith(`${dir}/`));
  return listOf<Volume>(pod.spec?.volumes).flatMap((v) => {
    const path = hostPath(v);
    return path !== undefined && contains(path) ? [{ name: String(v.name), hostPath: path }] : [];
  });
}
