// lxcfs processes on the node other than the agent's: the distribution's lxcfs.service, another LXCFS
// DaemonSet, one started by hand. Each serves its own files (pods mounting them see another view than
// ours, and ours cannot repair theirs), and one older than 6.0.6 clears the node's cgroup2 options every
// time it starts (host/cgroup2-options.ts). Finding them reads /proc only; describing them is pure.
import { readdirSync, readFileSync } from 'node:fs';
import { parsePodIdentity } from '../host/pod-identity.js';

export interface OtherLxcfs {
  pid: number;
  /** Its FUSE mountpoint (the last argument), when it has one. */
  mountPoint?: string;
  /** The systemd unit it runs in (`lxcfs.service`), when it is one. */
  unit?: string;
  /** The pod it runs in, when it is one. */
  podUid?: string;
  /** Its cgroup, for anything else. */
  cgroup: string;
}

/** The systemd service a cgroup path belongs to: `/system.slice/lxcfs.service` → `lxcfs.service`. */
export function systemdUnit(cgroup: string): string | undefined {
  return cgroup.split('/').find((part) => part.endsWith('.service'));
}

/** lxcfs processes (by their command name) not serving `ourFuseMount`. */
export function findOtherLxcfs(proc: string, ourFuseMount: string): OtherLxcfs[] {
  const others: OtherLxcfs[] = [];
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`${proc}/${name}/comm`, 'utf8').trim() !== 'lxcfs') continue;
      const argv = readFileSync(`${proc}/${name}/cmdline`, 'utf8')
        .split('\0')
        .filter((a) => a !== '');
      if (argv.at(-1) === ourFuseMount) continue;
      const identity = parsePodIdentity(readFileSync(`${proc}/${name}/cgroup`, 'utf8'));
      const mountPoint = argv.length > 1 && argv.at(-1)!.startsWith('/') ? argv.at(-1) : undefined;
      const unit = identity.podUid === undefined ? systemdUnit(identity.cgroup) : undefined;
      others.push({
        pid: Number(name),
        cgroup: identity.cgroup,
        ...(mountPoint === undefined ? {} : { mountPoint }),
        ...(unit === undefined ? {} : { unit }),
        ...(identity.podUid === undefined ? {} : { podUid: identity.podUid }),
      });
    } catch {
      // exited meanwhile
    }
  }
  return others;
}

/** One line per other lxcfs: what it is, why it matters, how to stop it. */
export function otherLxcfsProblems(others: readonly OtherLxcfs[]): string[] {
  return others.map((other) => {
    const where = other.mountPoint === undefined ? '' : ` on ${other.mountPoint}`;
    const what = `another lxcfs (pid ${other.pid}${where})`;
    const why =
      "pods mounting its files get its view, which this agent neither watches nor repairs, and one older than 6.0.6 clears the node's cgroup2 options each time it starts";
    if (other.unit !== undefined) {
      return (
        `${what} runs as the node's ${other.unit}: ${why}; on the node: systemctl disable --now ${other.unit}` +
        `${other.mountPoint === undefined ? '' : ` (then umount -l ${other.mountPoint} if it stays)`}`
      );
    }
    if (other.podUid !== undefined) {
      return (
        `${what} runs in pod ${other.podUid} (another LXCFS DaemonSet?): ${why}; remove that install once its pods no longer mount its files ` +
        "(`lxcfs-webhook audit` lists pods with other injectors' volumes)"
      );
    }
    return `${what} runs in cgroup ${other.cgroup}: ${why}; stop it`;
  });
}
