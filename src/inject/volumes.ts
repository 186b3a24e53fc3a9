// The volumes and mounts the webhook adds, derived only from the operator's settings: nothing in a pod
// can change which host path is mounted.
import { posix } from 'node:path';
import { VOLUME_PREFIX, type LxcfsFile } from '../config/defaults.js';
import type { Volume, VolumeMount } from './pod.js';

/** `/proc/meminfo` → `lxcfs-proc-meminfo`; `/sys/devices/system/cpu/online` → `lxcfs-sys-devices-system-cpu-online`. */
export function volumeName(file: LxcfsFile): string {
  return VOLUME_PREFIX + file.slice(1).replaceAll('/', '-');
}

export function hostPathOf(lxcfsRoot: string, file: LxcfsFile): string {
  return posix.join(lxcfsRoot, file);
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
  return volume.name === volumeName(file)
    && volume.hostPath?.path === hostPathOf(lxcfsRoot, file)
    && volume.hostPath?.type === 'File'
    && Object.keys(volume).every((key) => key === 'name' || key === 'hostPath');
}

/**
 * A mountPath as the kubelet mounts it: `/proc/meminfo/` and `/proc//meminfo` are `/proc/meminfo`, and a
 * relative `proc/meminfo`, which the API server accepts, is made absolute by the kubelet
 * (volumeutil.MakeAbsolutePath: `/` + path, cleaned) and so lands on `/proc/meminfo` too. Computed once
 * per mount, since every file is compared with every mount.
 */
export function normalisedMountPath(mountPath: unknown): string | undefined {
  return typeof mountPath === 'string' ? posix.normalize(`/${mountPath}`).replace(/(.)\/+$/, '$1') : undefined;
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
