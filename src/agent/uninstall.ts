// `agent --uninstall`: what the clean-up DaemonSet runs on every node once the agent DaemonSet is gone.
// Stops a leftover lxcfs of ours and removes everything the agent put on the node: lxcfs' mounts, the
// anchor tmpfs (with the state file on it) and the then empty directories.
import { LXCFS_STOP_TIMEOUT_MS } from '../config/defaults.js';
import type { Logger } from '../log.js';
import { agentLayout, type NodePaths } from './layout.js';
import { removeAnchor } from './lxcfs/anchor.js';
import { findLxcfsServing, killAndWait } from './lxcfs/process.js';

/** True when nothing of ours is left; otherwise what was left is logged, for removal by hand. */
export async function uninstallNode(paths: NodePaths, log: Logger): Promise<boolean> {
  const { layout } = agentLayout(paths);
  await killAndWait(
    paths.proc,
    findLxcfsServing(paths.proc, layout.fuseMount),
    LXCFS_STOP_TIMEOUT_MS,
  );
  const { leftovers } = await removeAnchor(layout, log);
  if (leftovers.length > 0) {
    log.warn({ leftovers }, 'left in place: not empty or busy; remove by hand once checked');
    return false;
  }
  log.info({ anchor: layout.root }, 'uninstalled: no lxcfs mounts or directories left');
  return true;
}
