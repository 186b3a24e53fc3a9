// Recognises lxcfs mounts that are not ours: another injector's, or another install of ours with
// another root. One recogniser for mutatePod (which never stacks mounts on them) and the audit (which
// tells the operator whose they are). Pure.
import { ALLOWED_FILES, ANNOTATIONS, OTHER_INJECTORS, type LxcfsFile } from '../config/defaults.js';
import {
  indexedListOf,
  listOf,
  stringMap,
  type Container,
  type ContainerList,
  type Pod,
  type Volume,
  type VolumeMount,
} from './pod.js';
import { parseStatus } from './status.js';
import { isLxcfsVolume, normalisedMountPath, shadowsPath, volumeName } from './volumes.js';

export interface LxcfsMount {
  container: string;
  file: LxcfsFile;
  /** Normalised, as the kubelet mounts it. */
  mountPath: string;
  volume: Volume;
}

/**
 * Every mount, in any container, of a host copy of the lxcfs tree that provides one of the files lxcfs
 * can serve: a hostPath volume whose path ends with the container path it is mounted at
 * (`<root>/proc/meminfo` at /proc/meminfo, `<root>/sys/devices/system/cpu` at /sys/devices/system/cpu).
 * The host's own tree at the same place (hostPath `/sys` at /sys, as cAdvisor has it, or `/proc` at
 * /proc) is no copy of lxcfs: like any other mount over those paths (a ConfigMap, /etc/shadow) it is a
 * plain conflict the planner skips per file, and the container gets the files it does not cover.
 */
export function lxcfsMounts(pod: Pod): LxcfsMount[] {
  const volumes = new Map(listOf<Volume>(pod.spec?.volumes).map((v) => [v.name, v]));
  const lists: ContainerList[] = ['initContainers', 'containers', 'ephemeralContainers'];
  return lists.flatMap((list) =>
    indexedListOf<Container>(pod.spec?.[list]).flatMap(({ item, index }) =>
      listOf<VolumeMount>(item.volumeMounts).flatMap((mount) => {
        const mountPath = normalisedMountPath(mount.mountPath);
        const volume = volumes.get(mount.name);
        const hostPath = normalisedMountPath(volume?.hostPath?.path);
        if (
          mountPath === undefined ||
          volume === undefined ||
          hostPath === undefined ||
          !hostPath.endsWith(mountPath)
        )
          return [];
        if (hostPath === mountPath) return []; // the host's own /proc or /sys: its root would be `/`
        const container = item.name ?? `${list}[${index}]`;
        return ALLOWED_FILES.filter((file) => shadowsPath(mountPath, file)).map((file) => ({
          container,
          file,
          mountPath,
          volume,
        }));
      }),
    ),
  );
}

/** The host directory a mount takes the lxcfs tree from: its hostPath without the container path. */
function rootOf({ mountPath, volume }: LxcfsMount): string {
  const path = normalisedMountPath(volume.hostPath?.path)!;
  return path.slice(0, -mountPath.length);
}

/**
 * The root another install of ours mounts `file` from: our volume exactly (name, `type: File`, no
 * other source) but another directory. Undefined for anything else.
 */
function otherRootOf(mount: LxcfsMount, lxcfsRoot: string): string | undefined {
  const { file, mountPath, volume } = mount;
  const shape =
    mountPath === file &&
    volume.name === volumeName(file) &&
    volume.hostPath?.type === 'File' &&
    Object.keys(volume).every((key) => key === 'name' || key === 'hostPath');
  const root = rootOf(mount);
  return shape && root !== lxcfsRoot ? root : undefined;
}

export type ForeignLxcfs =
  /** Every foreign mount is ours (our status annotation says so) from another root. */
  | { kind: 'other-root'; roots: string[]; mounts: LxcfsMount[] }
  | { kind: 'other-injector'; injector: string; mounts: LxcfsMount[] };

/** The lxcfs mounts in `pod` that are not ours with `lxcfsRoot`, and whose they are; undefined when none. */
export function recogniseForeign(pod: Pod, lxcfsRoot: string): ForeignLxcfs | undefined {
  const mounts = lxcfsMounts(pod).filter((m) => !isLxcfsVolume(m.volume, lxcfsRoot, m.file));
  if (mounts.length === 0) return undefined;
  // Only our status annotation, listing the file as injected in that container, proves an install of
  // ours made the mount; a peer's volumes can look the same (kubeservice's have our names and
  // `type: File`), and we write the annotation even when a peer's mounts left us nothing to add.
  const annotations = stringMap(pod.metadata?.annotations);
  const status = parseStatus(annotations[ANNOTATIONS.status]);
  const ours = (m: LxcfsMount) =>
    status?.containers[m.container]?.injected.includes(m.file) === true;
  const roots = mounts.map((m) => (ours(m) ? otherRootOf(m, lxcfsRoot) : undefined));
  if (roots.every((r) => r !== undefined)) {
    return { kind: 'other-root', roots: [...new Set(roots as string[])].sort(), mounts };
  }
  const theirRoots = new Set(mounts.map(rootOf));
  const known = OTHER_INJECTORS.find(
    (i) =>
      (i.annotation !== undefined && annotations[i.annotation] !== undefined) ||
      (i.roots ?? []).some((r) => theirRoots.has(r)),
  );
  const injector =
    known?.name ?? `an unknown injector (host directory ${[...theirRoots].sort().join(', ')})`;
  return { kind: 'other-injector', injector, mounts };
}

/** One line naming whose lxcfs volumes a pod carries, for the warning and the status annotation. */
export function describeForeign(foreign: ForeignLxcfs): string {
  const volumes = [...new Set(foreign.mounts.map((m) => String(m.volume.name)))].join(', ');
  const whose =
    foreign.kind === 'other-root'
      ? `another lxcfs-webhook install (lxcfs root ${foreign.roots.join(', ')})`
      : foreign.injector;
  return `pod already has lxcfs volumes of ${whose}: ${volumes}; nothing mounted over them`;
}
