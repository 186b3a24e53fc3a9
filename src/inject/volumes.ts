// The volumes and mounts the webhook adds, derived only from the operator's settings: nothing in a pod
// can change which host path is mounted.
import { posix } from 'node:path';
import { VOLUME_PREFIX, type LxcfsFile } from '../config/defaults.js';
import type { Volume, VolumeMount } from './pod.js';

// Names and host paths are asked for per file per container on every review, and there are only a
// few files and one root: each is computed once (the webhook's busiest path; see bench/webhook.ts).
const volumeNames = new Map<LxcfsFile, string>();
const hostPaths = new Map<string, Map<LxcfsFile, string>>();

/** `/proc/meminfo` → `lxcfs-proc-meminfo`; `/sys/devices/system/cpu/online` → `lxcfs-sys-devices-system-cpu-online`. */
export function volumeName(file: LxcfsFile): string {
  let name = volumeNames.get(file);
  if (name === undefined)
    volumeNames.set(file, (name = VOLUME_PREFIX + file.slice(1).replaceAll('/', '-')));
  return name;
}

export function hostPathOf(lxcfsRoot: string, file: LxcfsFile): string {
  let paths = hostPaths.get(lxcfsRoot);
  if (paths === undefined) hostPaths.set(lxcfsRoot, (paths = new Map()));
  let path = paths.get(file);
  if (path === undefined) paths.set(file, (path = posix.join(lxcfsRoot, file)));
  return path;
}

/** `type: File` makes the kubelet wait for lxcfs instead of creating a directory in its place. */
export function lxcfsVolume(lxcfsRoot: string, file: LxcfsFile): Volume {
  return { name: volumeName(file), hostPath: { path: hostPathOf(lxcfsRoot, file), type: 'File' } };
}

export function lxcfsMount(file: LxcfsFile): VolumeMount {
  return { name: volumeName(file), mountPath: file, readOnly: true };
}

/** True when `volume` is exactly the one we would add, so reusing it mounts no other host path. */
export function isLxcfsVolume(volume: Volume, lxcfsRoot: string, file: LxcfsFile): boolean {
  return (
    volume.name === volumeName(file) &&
    volume.hostPath?.path === hostPathOf(lxcfsRoot, file) &&
    volume.hostPath?.type === 'File' &&
    Object.keys(volume).every((key) => key === 'name' || key === 'hostPath')
  );
}

/** `/a/b`: segments of anything but `/`, none of them `.` or `..`; normalising it changes nothing. */
const CLEAN_ABSOLUTE_PATH = /^(?:\/(?!\.\.?(?:\/|$))[^/]+)+$/;

/**
 * A mountPath as the kubelet mounts it: `/proc/meminfo/` and `/proc//meminfo` are `/proc/meminfo`, and a
 * relative `proc/meminfo`, which the API server accepts, is made absolute by the kubelet
 * (volumeutil.MakeAbsolutePath: `/` + path, cleaned) and so lands on `/proc/meminfo` too. Computed once
 * per mount, since every file is compared with every mount.
 */
export function normalisedMountPath(mountPath: unknown): string | undefined {
  if (typeof mountPath !== 'string') return undefined;
  // Nearly every mountPath is already clean: absolute, no empty, `.` or `..` segment, no trailing `/`.
  if (CLEAN_ABSOLUTE_PATH.test(mountPath)) return mountPath;
  return posix.normalize(`/${mountPath}`).replace(/(.)\/+$/, '$1');
}

/**
 * True when a mount at (normalised) `path` already provides `file`: the same path, or a directory above
 * it other than `/` (another tool mounting all of /sys/devices/system/cpu, say). Ours would hide it.
 */
export function shadowsPath(path: string | undefined, file: LxcfsFile): boolean {
  return path !== undefined && path !== '/' && (path === file || file.startsWith(`${path}/`));
}

/**
 * True when a mount at (normalised) `path` cannot live beside ours at `file`: it provides the file (see
 * shadowsPath) or it sits below it, where the runtime would have to mount into our file and fails
 * the container's start.
 */
export function conflictsWithFile(path: string | undefined, file: LxcfsFile): boolean {
  return shadowsPath(path, file) || (path !== undefined && path.startsWith(`${file}/`));
}
