// The node's cgroup2 mount options, which an lxcfs older than 6.0.6 clears for the whole node when it
// starts in the node's cgroup namespace (it mounts a cgroup2 of its own with no options, and the kernel
// applies a mount's options made from the initial cgroup namespace to the one cgroup2 hierarchy:
// lxc/lxcfs#681). The options are the hierarchy's, so every mount of it shows the same ones; they are
// read from mountinfo's superblock options, which the kernel writes without touching any filesystem.
// Deciding is pure (cgroup2OptionsProblem); readCgroup2Options only reads.
import { readFileSync } from 'node:fs';

/** What systemd mounts /sys/fs/cgroup with (src/shared/mount-setup.c), where the kernel has them. */
export const SYSTEMD_CGROUP2_OPTIONS: readonly string[] = ['nsdelegate', 'memory_recursiveprot'];
/** On a hybrid (v1 + v2) node systemd mounts the v2 part at /sys/fs/cgroup/unified with nsdelegate only. */
const SYSTEMD_HYBRID_OPTIONS: readonly string[] = ['nsdelegate'];

export interface Cgroup2Options {
  /** Where the node's cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid nodes). */
  mountPoint: string;
  /** Its superblock options, as mountinfo lists them: `rw,nsdelegate,memory_recursiveprot`. */
  options: string[];
  /** Options this kernel knows (/sys/kernel/cgroup/features); undefined when it could not be read. */
  kernelFeatures?: string[];
  /** The node's PID 1 is systemd, so what it mounts is what the node should have. */
  initIsSystemd: boolean;
}

/** The node's cgroup2 line in mountinfo text: its mount point and superblock options. */
export function cgroup2Mount(
  mountinfo: string,
): { mountPoint: string; options: string[] } | undefined {
  const found: Array<{ mountPoint: string; options: string[] }> = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields[separator + 1] !== 'cgroup2') continue;
    found.push({
      mountPoint: fields[4]!,
      options: (fields[separator + 3] ?? '').split(',').filter(Boolean),
    });
  }
  return (
    found.find((m) => m.mountPoint === '/sys/fs/cgroup') ??
    found.find((m) => m.mountPoint === '/sys/fs/cgroup/unified') ??
    found[0]
  );
}

/** The options systemd would have set that this node's cgroup2 lacks (none when PID 1 is not systemd). */
export function missingSystemdOptions(facts: Cgroup2Options): string[] {
  if (!facts.initIsSystemd) return [];
  const wanted =
    facts.mountPoint === '/sys/fs/cgroup/unified'
      ? SYSTEMD_HYBRID_OPTIONS
      : SYSTEMD_CGROUP2_OPTIONS;
  return wanted.filter(
    (o) => (facts.kernelFeatures ?? wanted).includes(o) && !facts.options.includes(o),
  );
}

/**
 * The remount that puts the missing options back and keeps the others: a remount sets every flag it
 * does not name back to off, so the options the node still has are named too.
 */
export function restoreCommand(facts: Cgroup2Options): string {
  const keep = facts.options.filter((o) => o !== 'rw' && o !== 'ro');
  return `mount -o remount,${[...keep, ...missingSystemdOptions(facts)].join(',')} ${facts.mountPoint}`;
}

/**
 * The problem, with its fix, when the node's cgroup2 lacks options systemd mounts it with; `cause` names
 * what is known to clear them on this node (an lxcfs older than 6.0.6 seen running), if anything.
 */
export function cgroup2OptionsProblem(
  facts: Cgroup2Options | undefined,
  cause?: string,
): string | undefined {
  if (facts === undefined) return undefined;
  const missing = missingSystemdOptions(facts);
  if (missing.length === 0) return undefined;
  return (
    `the node's cgroup2 (${facts.mountPoint}) has options ${facts.options.join(',')}, without ${missing.join(', ')} that systemd mounts it with: ` +
    `${cause ?? "an lxcfs older than 6.0.6 started in the node's cgroup namespace clears them (lxc/lxcfs#681)"}; ` +
    'memory.min/memory.low protection and cgroup delegation now work differently on the whole node. ' +
    `Once no such lxcfs runs, restore them on the node (as root, outside containers): ${restoreCommand(facts)}`
  );
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The node's cgroup2 options, read through `proc` (PID 1's mount table, else this process's). */
export function readCgroup2Options(proc: string): Cgroup2Options | undefined {
  const mountinfo =
    readOrUndefined(`${proc}/1/mountinfo`) ?? readOrUndefined('/proc/self/mountinfo');
  const mount = mountinfo === undefined ? undefined : cgroup2Mount(mountinfo);
  if (mount === undefined) return undefined;
  const features = readOrUndefined('/sys/kernel/cgroup/features');
  return {
    ...mount,
    ...(features === undefined ? {} : { kernelFeatures: features.split('\n').filter(Boolean) }),
    initIsSystemd: readOrUndefined(`${proc}/1/comm`)?.trim() === 'systemd',
  };
}
