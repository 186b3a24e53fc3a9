// Where the agent's things are on the node, derived from its options: shared by the agent and by
// `check node`, which looks at the same places without running the agent.
import { dirname, join, resolve } from 'node:path';
import {
  AGENT_STATE_DIR,
  AGENT_STATE_FILE,
  ALLOWED_FILES,
  FUSECTL_DIR_NAME,
  LEGACY_AGENT_STATE_FILE,
  LXCFS_PIDFILE_NAME,
  MAX_NAMESPACES_PER_CONTAINER,
  MAX_REMEMBERED_NAMESPACES,
  MOUNT_WATCH_PING_TIMEOUT_MS,
  NATIVE_HELPER_TIMEOUT_MS,
  REFUSED_TARGET_BACKOFF,
  REMOUNT_BATCH_SIZE,
  REMOUNT_PARALLELISM,
  REPAIR_RETRY_MAX_MS,
} from '../config/defaults.js';
import type { AnchorLayout } from './lxcfs/anchor.js';
import type { SweepConfig } from './repair/sweeper.js';

export interface NodePaths {
  /** The anchor pods mount from. */
  lxcfsRoot: string;
  /** Where lxcfs itself mounts. */
  fuseMount: string;
  remountHelper: string;
  /** The host's procfs. */
  proc: string;
}

/** Both paths resolved, and everything derived from them. */
export function agentLayout(paths: NodePaths) {
  const layout: AnchorLayout = {
    root: resolve(paths.lxcfsRoot),
    fuseMount: resolve(paths.fuseMount),
    helper: resolve(paths.remountHelper),
  };
  const stateDir = join(layout.root, AGENT_STATE_DIR);
  return {
    layout,
    pidfile: join(dirname(layout.fuseMount), LXCFS_PIDFILE_NAME),
    /** A tmpfs of its own, under the anchor (see STATE_TMPFS_OPTIONS). */
    stateDir,
    stateFile: join(stateDir, AGENT_STATE_FILE),
    legacyStateFile: join(layout.root, LEGACY_AGENT_STATE_FILE),
    /** Where the agent mounts the FUSE control filesystem when none is mounted. */
    fusectlDir: join(dirname(layout.fuseMount), FUSECTL_DIR_NAME),
  };
}

export function sweepConfig(
  layout: AnchorLayout,
  proc: string,
  remountSupported: boolean,
  sweepIntervalMs: number,
): SweepConfig {
  return {
    proc,
    fuseMount: layout.fuseMount,
    helper: layout.helper,
    files: ALLOWED_FILES,
    remountParallelism: REMOUNT_PARALLELISM,
    remountBatchSize: REMOUNT_BATCH_SIZE,
    helperTimeoutMs: NATIVE_HELPER_TIMEOUT_MS,
    remountSupported,
    watchPingTimeoutMs: MOUNT_WATCH_PING_TIMEOUT_MS,
    maxNamespacesPerContainer: MAX_NAMESPACES_PER_CONTAINER,
    maxRememberedNamespaces: MAX_REMEMBERED_NAMESPACES,
    // The first retry is the `retry` sweep, one sweep interval after the failure (sweep-schedule.ts).
    retryBackoff: {
      firstMs: sweepIntervalMs,
      maxMs: Math.max(sweepIntervalMs, REPAIR_RETRY_MAX_MS),
    },
    refusedBackoff: REFUSED_TARGET_BACKOFF,
  };
}
