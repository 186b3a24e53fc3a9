// What is wrong with one running pod that the webhook selects, judged by the webhook's own function:
// `mutatePod` says what it would add to the pod today (nothing, for a pod it injected), and the pod's
// volumes say where the lxcfs files it already has come from. Pure.
import { ALLOWED_FILES, ANNOTATIONS, type LxcfsFile } from '../config/defaults.js';
import { mutatePod } from '../inject/mutate.js';
import { indexedListOf, listOf, stringMap, type Container, type ContainerList, type Pod, type Volume, type VolumeMount } from '../inject/pod.js';
import type { InjectionSettings } from '../inject/settings.js';
import { parseStatus } from '../inject/status.js';
import { isLxcfsVolume, normalisedMountPath, shadowsPath, volumeName } from '../inject/volumes.js';
import { pointerTokens } from '../manifest/path.js';
import { posix } from 'node:path';

/** Most serious first: a finding of an earlier kind hides the later ones for the same pod. */
export const FINDING_KINDS = ['other-injector', 'other-root', 'partially-injected', 'never-injected'] as const;
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
    byContainer.set(name, [...(byContainer.get(name) ?? []), ...mounts.map((m) => m.mountPath as LxcfsFile)]);
  }
  return [...byContainer].map(([container, files]) => ({ container, files }));
}

interface LxcfsMount {
  container: string;
  file: LxcfsFile;
  mountPath: string;
  volume: Volume;
}

/** Every hostPath-backed mount, in any container, that provides one of the files lxcfs can serve. */
function lxcfsMounts(pod: Pod): LxcfsMount[] {
  const volumes = new Map(listOf<Volume>(pod.spec?.volumes).map((v) => [v.name, v]));
  const lists: ContainerList[] = ['initContainers', 'containers', 'ephemeralContainers'];
  return lists.flatMap((list) => indexedListOf<Container>(pod.spec?.[list]).flatMap(({ item, index }) =>
    listOf<VolumeMount>(item.volumeMounts).flatMap((mount) => {
      const mountPath = normalisedMountPath(mount.mountPath);
      const volume = volumes.get(mount.name);
      if (mountPath === undefined || typeof volume?.hostPath?.path !== 'string') return [];
      const container = item.name ?? `${list}[${index}]`;
      return ALLOWED_FILES.filter((file) => shadowsPath(mountPath, file)).map((file) => ({ container, file, mountPath, volume }));
    })));
}

/**
 * The root another install of ours mounts `file` from: our volume exactly (name, `type: File`, no
 * other source) but another directory. Undefined for anything else.
 */
function otherRootOf({ file, mountPath, volume }: LxcfsMount, lxcfsRoot: string): string | undefined {
  const path = posix.normalize(volume.hostPath!.path!);
  const shape = mountPath === file && volume.name === volumeName(file) && volume.hostPath?.type === 'File'
    && Object.keys(volume).every((key) => key === 'name' || key === 'hostPath');
  if (!shape || !path.endsWith(file)) return undefined;
  const root = path.slice(0, -file.length) || '/';
  return root === lxcfsRoot ? undefined : root;
}

/**
 * Finds what the webhook would change in `pod` (one it selects), or undefined when nothing. `pod` must
 * be a pod as the API server stores it; mutatePod reads only its metadata and spec.
 */
export function examinePod(pod: Pod, settings: InjectionSettings): PodFinding | undefined {
  const result = mutatePod({ pod, settings });
  if (result.outcome.result === 'skipped') return undefined; // opted out, Windows, hostPID, mirror pod
  const missing = missingFrom(pod, result.patch);

  const mounts = lxcfsMounts(pod);
  const foreign = mounts.filter((m) => !isLxcfsVolume(m.volume, settings.lxcfsRoot, m.file));
  if (foreign.length > 0) {
    // Only our status annotation, listing the file as injected in that container, proves an install of
    // ours made the mount; a peer's volumes can look the same (kubeservice's have our names and
    // `type: File`), and we write the annotation even when a peer's mounts left us nothing to add.
    const status = parseStatus(stringMap(pod.metadata?.annotations)[ANNOTATIONS.status]);
    const ours = (m: LxcfsMount) => status?.containers[m.container]?.injected.includes(m.file) === true;
    const roots = foreign.map((m) => (ours(m) ? otherRootOf(m, settings.lxcfsRoot) : undefined));
    if (roots.every((r) => r !== undefined)) {
      return { kind: 'other-root', missing, roots: [...new Set(roots as string[])].sort() };
    }
    return { kind: 'other-injector', missing, foreignVolumes: foreignVolumes(pod, foreign) };
  }
  if (missing.length === 0) return undefined;
  return { kind: mounts.length > 0 ? 'partially-injected' : 'never-injected', missing };
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
  const contains = (dir: string) => dir !== '/' && paths.some((p) => p === dir || p.startsWith(`${dir}/`));
  return listOf<Volume>(pod.spec?.volumes).flatMap((v) => {
    const path = hostPath(v);
    return path !== undefined && contains(path) ? [{ name: String(v.name), hostPath: path }] : [];
  });
}
