// Finds what a remount cannot fix: processes that still hold a file descriptor opened through a dead
// lxcfs mount. The remount only changes what later open()s find; such a descriptor keeps failing with
// "Transport endpoint is not connected" until the process reopens the file or restarts.
//
// A descriptor is matched by the mount it was opened through (mnt_id in /proc/<pid>/fdinfo/<fd>), not
// by its path: once the dead mount is detached the fd's path reads as "/", and stat() on it would ask
// FUSE. A mount id is not reused while any descriptor still holds the mount.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface DeadDescriptor {
  pid: number;
  fd: number;
  /** The process name, for the log. */
  comm: string;
  mountId: number;
}

function mountIdOf(fdinfo: string): number | undefined {
  const match = /^mnt_id:\s*(\d+)$/m.exec(fdinfo);
  return match ? Number(match[1]) : undefined;
}

export function findDeadDescriptors(
  proc: string,
  pids: readonly number[],
  deadMountIds: ReadonlySet<number>,
): DeadDescriptor[] {
  const found: DeadDescriptor[] = [];
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // exited
    }
    for (const fd of fds) {
      try {
        // Pipes, sockets and anonymous inodes are never lxcfs files; only paths need a look.
        if (!readlinkSync(`${proc}/${pid}/fd/${fd}`).startsWith('/')) continue;
        const mountId = mountIdOf(readFileSync(`${proc}/${pid}/fdinfo/${fd}`, 'utf8'));
        if (mountId === undefined || !deadMountIds.has(mountId)) continue;
        const comm = readFileSync(`${proc}/${pid}/comm`, 'utf8').trim();
        found.push({ pid, fd: Number(fd), comm, mountId });
      } catch {
        // closed meanwhile
      }
    }
  }
  return found;
}
