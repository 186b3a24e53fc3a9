// Ends every request of a FUSE connection. An lxcfs with a thread stuck in a FUSE request (a deadlock on
// its own files, a request that lxcfs took and never answers) does not die on SIGKILL: the thread waits
// uninterruptibly for the answer, so the process stays <defunct> in D state, keeps its connection open,
// and every container reading a file of it waits too. Aborting the connection through the FUSE control
// filesystem fails all those requests: the threads and readers return and the process can exit.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATIVE_HELPER_TIMEOUT_MS } from '../../config/defaults.js';
import { readOwnMounts } from '../host/mountinfo.js';
import { runHelperStep } from '../host/native.js';

/** The connection's directory name in fusectl: the kernel's dev_t of `major:minor`, in decimal. */
export function fusectlConnection(dev: string): string {
  const [major, minor] = dev.split(':').map(Number) as [number, number];
  return String(major * 2 ** 20 + minor);
}

/**
 * Writes to `<fusectl>/<connection>/abort`. Uses a fusectl mount the agent sees, or mounts one at
 * `fusectlDir` for the moment (the agent's container may have none), never at /sys/fs/fuse/connections.
 */
export async function abortFuseConnection(
  dev: string,
  fusectlDir: string,
  helper: string,
): Promise<void> {
  const mounted = readOwnMounts().find((m) => m.fsType === 'fusectl')?.mountPoint;
  const dir = mounted ?? fusectlDir;
  if (mounted === undefined) {
    mkdirSync(fusectlDir, { recursive: true });
    await runHelperStep(helper, ['fusectl', fusectlDir], NATIVE_HELPER_TIMEOUT_MS);
  }
  try {
    writeFileSync(join(dir, fusectlConnection(dev), 'abort'), '1');
  } finally {
    if (mounted === undefined)
      await runHelperStep(helper, ['detach', fusectlDir], NATIVE_HELPER_TIMEOUT_MS).catch(
        () => undefined,
      );
  }
}
