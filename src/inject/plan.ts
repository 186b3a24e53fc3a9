// Decides, for every container of a pod, which lxcfs files to mount and which to skip and why. Pure:
// it reads the pod and returns a plan; `buildPatch` turns the plan into JSON Patch operations.
//
// The plan is computed from what the pod already has, so running it on an injected pod adds nothing
// (idempotent), and a partially injected pod only gets what is missing.
import type { LxcfsFile } from '../config/defaults.js';
import type { PodOptions } from './options.js';
import {
  indexedListOf,
  listOf,
  type Container,
  type ContainerList,
  type Pod,
  type Volume,
  type VolumeMount,
} from './pod.js';
import {
  isLxcfsVolume,
  lxcfsMount,
  lxcfsVolume,
  normalisedMountPath,
  conflictsWithFile,
  volumeName,
} from './volumes.js';

/** Why one file is not mounted in one container. Stable strings: metric labels and status values. */
export type FileSkipReason =
  | 'excluded' // named in the exclude-containers annotation
  | 'init-container' // init containers need include-init-containers: "true"
  | 'mount-path-conflict' // the container already mounts something at the target, above or below it
  | 'volume-name-conflict' // the pod has a different volume under our volume name
  | 'no-volume'; // ephemeral container, but the pod has no lxcfs volume to reuse

export interface ContainerPlan {
  list: ContainerList;
  index: number;
  name: string;
  /** Mounts to add to this container. */
  add: VolumeMount[];
  /** Files the container has after the plan (already present or added). */
  injected: LxcfsFile[];
  skipped: Map<LxcfsFile, FileSkipReason>;
}

export interface InjectionPlan {
  /** Volumes to add to the pod: only those some added mount needs. */
  addVolumes: Volume[];
  containers: ContainerPlan[];
}

type VolumeState = 'present' | 'absent' | 'conflict';

function volumeStates(
  pod: Pod,
  lxcfsRoot: string,
  files: readonly LxcfsFile[],
): Map<LxcfsFile, VolumeState> {
  const volumes = listOf<Volume>(pod.spec?.volumes);
  return new Map(
    files.map((file) => {
      const existing = volumes.find((v) => v.name === volumeName(file));
      const state: VolumeState =
        existing === undefined
          ? 'absent'
          : isLxcfsVolume(existing, lxcfsRoot, file)
            ? 'present'
            : 'conflict';
      return [file, state];
    }),
  );
}

/** Where a container sits in the pod's spec. */
interface ContainerSlot {
  container: Container;
  list: ContainerList;
  index: number;
}

/** What every container of one pod is planned against: the files asked for and the pod's volumes. */
interface PodFiles {
  files: readonly LxcfsFile[];
  volumes: Map<LxcfsFile, VolumeState>;
}

function planContainer(
  { container, list, index }: ContainerSlot,
  { files, volumes }: PodFiles,
  containerSkip: FileSkipReason | undefined,
): ContainerPlan {
  const plan: ContainerPlan = {
    list,
    index,
    name: container.name ?? `${list}[${index}]`,
    add: [],
    injected: [],
    skipped: new Map(),
  };
  const mounts = listOf<VolumeMount>(container.volumeMounts).map((m) => ({
    name: m.name,
    path: normalisedMountPath(m.mountPath),
  }));
  for (const file of files) {
    if (containerSkip) {
      plan.skipped.set(file, containerSkip);
      continue;
    }
    const volume = volumes.get(file);
    const name = volumeName(file);
    const ours = mounts.some((m) => m.path === file && m.name === name);
    if (ours && volume === 'present') {
      plan.injected.push(file);
    } else if (mounts.some((m) => conflictsWithFile(m.path, file))) {
      plan.skipped.set(file, 'mount-path-conflict');
    } else if (volume === 'conflict') {
      plan.skipped.set(file, 'volume-name-conflict');
    } else if (volume === 'absent' && list === 'ephemeralContainers') {
      plan.skipped.set(file, 'no-volume');
    } else {
      plan.add.push(lxcfsMount(file));
      plan.injected.push(file);
    }
  }
  return plan;
}

function volumesToAdd(
  containers: ContainerPlan[],
  volumes: Map<LxcfsFile, VolumeState>,
  lxcfsRoot: string,
  files: readonly LxcfsFile[],
): Volume[] {
  const mounted = new Set(containers.flatMap((c) => c.add.map((m) => m.name)));
  return files
    .filter((file) => volumes.get(file) === 'absent' && mounted.has(volumeName(file)))
    .map((file) => lxcfsVolume(lxcfsRoot, file));
}

/**
 * Plans injection at pod creation: regular containers and native sidecars (init containers with
 * `restartPolicy: Always`, which run beside the app); other init containers only when asked for.
 */
export function planPodCreate(pod: Pod, lxcfsRoot: string, options: PodOptions): InjectionPlan {
  const volumes = volumeStates(pod, lxcfsRoot, options.files);
  const podFiles = { files: options.files, volumes };
  const excluded = (c: Container) =>
    c.name !== undefined && options.excludedContainers.has(c.name) ? 'excluded' : undefined;
  const containers = [
    ...indexedListOf<Container>(pod.spec?.initContainers).map(({ item: c, index: i }) => {
      const sidecar = c.restartPolicy === 'Always';
      const skip =
        excluded(c) ?? (sidecar || options.includeInitContainers ? undefined : 'init-container');
      return planContainer({ container: c, list: 'initContainers', index: i }, podFiles, skip);
    }),
    ...indexedListOf<Container>(pod.spec?.containers).map(({ item: c, index: i }) =>
      planContainer({ container: c, list: 'containers', index: i }, podFiles, excluded(c)),
    ),
  ];
  return { addVolumes: volumesToAdd(containers, volumes, lxcfsRoot, options.files), containers };
}

/**
 * Plans a `kubectl debug` (UPDATE of pods/ephemeralcontainers): only ephemeral containers that are
 * not in `oldPod` get mounts, and only from lxcfs volumes the pod already has, because that
 * subresource may change nothing but the new containers.
 */
export function planEphemeralUpdate(
  pod: Pod,
  oldPod: Pod,
  lxcfsRoot: string,
  options: PodOptions,
): InjectionPlan {
  const volumes = volumeStates(pod, lxcfsRoot, options.files);
  const existing = new Set(listOf<Container>(oldPod.spec?.ephemeralContainers).map((c) => c.name));
  const containers = indexedListOf<Container>(pod.spec?.ephemeralContainers)
    .filter(({ item: c }) => !existing.has(c.name))
    .map(({ item: c, index: i }) =>
      planContainer(
        { container: c, list: 'ephemeralContainers', index: i },
        { files: options.files, volumes },
        c.name !== undefined && options.excludedContainers.has(c.name) ? 'excluded' : undefined,
      ),
    );
  return { addVolumes: [], containers };
}

/** Containers named in exclude-containers that the pod does not have: most likely a typo. */
export function unknownExcludedNames(pod: Pod, options: PodOptions): string[] {
  const names = new Set(
    (['containers', 'initContainers', 'ephemeralContainers'] as const).flatMap((list) =>
      listOf<Container>(pod.spec?.[list]).map((c) => c.name),
    ),
  );
  return [...options.excludedContainers].filter((name) => !names.has(name));
}
