// The anchor: a small tmpfs at --lxcfs-root that outlives lxcfs (and the agent). lxcfs mounts at a
// private --fuse-mount; the agent binds its proc and sys directories onto <anchor>/proc and <anchor>/sys,
// and pods take per-file hostPaths under the anchor. When lxcfs goes away only those two binds and the
// FUSE mount are dropped (lazily: a dead FUSE mount cannot be unmounted any other way, and a new lxcfs
// cannot mount over it), and the anchor itself stays put.
//
// Everything here decides from mountinfo and never stat()s a path that may be a dead or hung FUSE mount.
import { mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { ANCHOR_TMPFS_OPTIONS, NATIVE_HELPER_TIMEOUT_MS } from '../../config/defaults.js';
import { LxcfsWebhookError } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  isFuse,
  mountsAtOrBelow,
  readOwnMounts,
  topMountAt,
  type Mount,
} from '../host/mountinfo.js';
import { runHelperStep } from '../host/native.js';

export interface AnchorLayout {
  /** The anchor: the tmpfs pods mount from. */
  root: string;
  /** Where lxcfs itself mounts. */
  fuseMount: string;
  /** The native helper that does the mounting. */
  helper: string;
}

/** lxcfs' top-level directories bound into the anchor. */
const BOUND_DIRS = ['proc', 'sys'] as const;
/** More stacked mounts than this at one place means something keeps mounting there. */
const MAX_CLEAR_PASSES = 20;

/** Mounts the anchor tmpfs if needed, clears dead mounts and leftovers, and creates the mountpoints. */
export async function prepareAnchor(layout: AnchorLayout, log: Logger): Promise<void> {
  const top = topMountAt(readOwnMounts(), layout.root);
  if (top && isFuse(top)) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `a FUSE filesystem (${top.fsType}) is mounted directly on ${layout.root}, probably the node's own lxcfs service: ` +
        `stop it (systemctl disable --now lxcfs) and unmount it (umount -l ${layout.root}), or give the agent another anchor directory`,
      { setting: 'root' },
    );
  }
  await clearLxcfsMounts(layout, log);

  mkdirSync(layout.root, { recursive: true });
  // In a DaemonSet the anchor is a hostPath bind (ext4, xfs...): a tmpfs goes on top of it and, through
  // Bidirectional propagation, on the host. A tmpfs already there is the one an earlier agent mounted.
  if (topMountAt(readOwnMounts(), layout.root)?.fsType !== 'tmpfs') {
    await runHelperStep(
      layout.helper,
      ['tmpfs', layout.root, ANCHOR_TMPFS_OPTIONS],
      NATIVE_HELPER_TIMEOUT_MS,
    );
    log.info({ anchor: layout.root }, 'mounted the anchor tmpfs');
  }
  for (const dir of BOUND_DIRS) {
    const path = join(layout.root, dir);
    mkdirSync(path, { recursive: true });
    removeEmptyDirectoriesBelow(path, log);
  }
  try {
    mkdirSync(layout.fuseMount, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LxcfsWebhookError(
      'E_AGENT',
      `the FUSE mountpoint ${layout.fuseMount} is unusable (${code}): give the agent a directory it can create and mount on`,
      { setting: 'fuseMount' },
    );
  }
}

/**
 * Lazily unmounts everything at or below the FUSE mountpoint and the anchor's proc and sys, deepest
 * first, again and again until mountinfo shows nothing there.
 */
export async function clearLxcfsMounts(layout: AnchorLayout, log: Logger): Promise<void> {
  const places = [layout.fuseMount, ...BOUND_DIRS.map((dir) => join(layout.root, dir))];
  if (await detachEverythingBelow(places, layout.helper, log)) return;
  throw new LxcfsWebhookError(
    'E_AGENT',
    `mounts keep reappearing under ${places.join(', ')} after ${MAX_CLEAR_PASSES} rounds of lazy unmounts: ` +
      'find what mounts there (grep lxcfs /proc/self/mountinfo) and stop it',
  );
}

/**
 * Lazily unmounts everything at or below `places`, deepest first, pass after pass until mountinfo shows
 * nothing there; false when mounts were still there after MAX_CLEAR_PASSES passes.
 */
async function detachEverythingBelow(
  places: readonly string[],
  helper: string,
  log: Logger,
): Promise<boolean> {
  for (let pass = 0; pass < MAX_CLEAR_PASSES; pass++) {
    const mounts = readOwnMounts();
    const stacked = places.flatMap((place) => mountsAtOrBelow(mounts, place));
    if (stacked.length === 0) return true;
    for (const { mountPoint, fsType, dev } of stacked) {
      log.info({ mountPoint, fsType, dev }, 'lazily unmounting');
      await runHelperStep(helper, ['detach', mountPoint], NATIVE_HELPER_TIMEOUT_MS).catch(
        // EINVAL: already gone with its parent; the next pass looks again
        (err: unknown) => log.warn({ mountPoint, err }, 'lazy unmount failed'),
      );
    }
  }
  return false;
}

/**
 * A container runtime asked to mount a missing hostPath file creates it as a directory, which then
 * breaks every later pod with "not a directory". Such directories are empty: remove those, never files.
 */
function removeEmptyDirectoriesBelow(dir: string, log: Logger): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    removeEmptyDirectoriesBelow(path, log);
    try {
      rmdirSync(path);
      log.info({ path }, 'removed leftover empty directory');
    } catch {
      // not empty: not ours to remove
    }
  }
}

/**
 * Uninstall: removes everything the agent put on the node once lxcfs is stopped: lxcfs' mounts, the
 * anchor tmpfs (with the state file on it) and the then empty directories. Files someone else put
 * under the anchor directory are left, and so is the directory holding them.
 */
export async function removeAnchor(
  layout: AnchorLayout,
  log: Logger,
): Promise<{ leftovers: string[] }> {
  await clearLxcfsMounts(layout, log);
  // What is left holds no lxcfs mount: the anchor tmpfs, and whatever else was mounted under it.
  await detachEverythingBelow([layout.root], layout.helper, log);
  const leftovers: string[] = [];
  for (const dir of [layout.root, layout.fuseMount]) {
    try {
      removeEmptyDirectoriesBelow(dir, log);
      rmdirSync(dir);
      log.info({ path: dir }, 'removed');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') leftovers.push(`${dir} (${code})`);
    }
  }
  return { leftovers };
}

/** Binds the running lxcfs' proc and sys directories into the anchor. */
export async function bindIntoAnchor(layout: AnchorLayout): Promise<void> {
  for (const dir of BOUND_DIRS) {
    await runHelperStep(
      layout.helper,
      ['bind', join(layout.fuseMount, dir), join(layout.root, dir)],
      NATIVE_HELPER_TIMEOUT_MS,
    );
  }
}

export interface AnchorState {
  /** A tmpfs is mounted at the anchor. */
  tmpfs: boolean;
  /** Per bound directory: served by the live lxcfs, a dead lxcfs, or nothing. */
  binds: Record<(typeof BOUND_DIRS)[number], 'live' | 'dead' | 'absent'>;
}

/** The anchor as mountinfo shows it, given the dev of the running lxcfs (undefined: none runs). */
export function inspectAnchor(
  mounts: readonly Mount[],
  root: string,
  liveDev: string | undefined,
): AnchorState {
  const bindState = (dir: string) => {
    const top = topMountAt(mounts, join(root, dir));
    if (!top || !isFuse(top)) return 'absent';
    return top.dev === liveDev ? 'live' : 'dead';
  };
  return {
    tmpfs: topMountAt(mounts, root)?.fsType === 'tmpfs',
    binds: { proc: bindState('proc'), sys: bindState('sys') },
  };
}
