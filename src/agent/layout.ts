// Where the agent's things are on the node, derived from its options: shared by the agent and by
// `check node`, which looks at the same places without running the agent.
import { dirname, join, resolve } from 'node:path';
import {
  AGENT_STATE_FILE,
  ALLOWED_FILES,
  LXCFS_PIDFILE_NAME,
  NATIVE_HELPER_TIMEOUT_MS,
  REMOUNT_BATCH_SIZE,
  REMOUNT_PARALLELISM,
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
  return {
    layout,
    pidfile: join(dirname(layout.fuseMount), LXCFS_PIDFILE_NAME),
    stateFile: join(layout.root, AGENT_STATE_FILE),
  };
}

export function sweepConfig(
  layout: AnchorLayout,
  proc: string,
  remountSupported: boolean,
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
  };
}
