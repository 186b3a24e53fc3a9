// Parses /proc/<pid>/mountinfo (see proc(5)) and answers the few questions the agent asks of it. The
// kernel produces it without any FUSE traffic, so it is the one safe way to look at mounts that may
// belong to a dead or hung lxcfs: never stat() those.
import { readFileSync } from 'node:fs';
import { LxcfsWebhookError } from '../../errors.js';

export interface Mount {
  mountId: number;
  parentId: number;
  /** `major:minor` of the filesystem; for FUSE, one per connection, i.e. per lxcfs instance. */
  dev: string;
  /** Path inside the filesystem that is mounted here, e.g. `/proc/meminfo` for a bind of one lxcfs file. */
  root: string;
  /**
   * The kernel dropped the root's dentry: it prints the root as `/proc/meminfo//deleted`. A FUSE lookup
   * that fails (lxcfs dead, or killed while hung) does this to every bind of that file, so it is what a
   * dead lxcfs file usually looks like in a container that outlived the lookup.
   */
  rootDeleted: boolean;
  /** Where it is mounted, relative to the reading process's root. */
  mountPoint: string;
  /** Per-mount options (`ro` or `rw` first). */
  options: string[];
  fsType: string;
  source: string;
}

/** What dentry_path() appends to a dropped dentry; no real path can contain `//`. */
const DELETED_SUFFIX = '//deleted';

/** mountinfo escapes space, tab, newline and backslash as octal: `\040`. */
function unescape(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/**
 * Parses mountinfo text. With `onlyAt`, only the mounts at those paths are returned: a sweep looks at a
 * few targets in hundreds of namespaces, and skipping the other lines early keeps it cheap. (Paths in
 * `onlyAt` must not need escaping.)
 */
export function parseMountinfo(text: string, onlyAt?: ReadonlySet<string>): Mount[] {
  return parseMountLines(onlyAt ? mountLinesAt(text, onlyAt) : text.split('\n'));
}

/** The lines of mountinfo text about mounts at `paths` (which must not need escaping), in order. */
export function mountLinesAt(text: string, paths: ReadonlySet<string>): string[] {
  return text.split('\n').filter((line) => line !== '' && paths.has(field(line, 4)));
}

/** Parses mountinfo lines (empty ones are skipped). */
export function parseMountLines(lines: readonly string[]): Mount[] {
  const mounts: Mount[] = [];
  for (const line of lines) {
    if (line === '') continue;
    const fields = line.split(' ');
    // Optional fields (shared:N, master:N, ...) run up to a lone "-".
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator < 0)
      throw new LxcfsWebhookError(
        'E_AGENT',
        `unparseable mountinfo line (an unknown kernel format?): ${line}`,
      );
    const root = unescape(fields[3]!);
    const rootDeleted = root.endsWith(DELETED_SUFFIX);
    mounts.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      dev: fields[2]!,
      root: rootDeleted ? root.slice(0, -DELETED_SUFFIX.length) : root,
      rootDeleted,
      mountPoint: unescape(fields[4]!),
      options: fields[5]!.split(','),
      fsType: fields[separator + 1]!,
      source: unescape(fields[separator + 2]!),
    });
  }
  return mounts;
}

/** The n-th space-separated field of a line, without splitting all of it. */
function field(line: string, n: number): string {
  let start = 0;
  for (let i = 0; i < n; i++) start = line.indexOf(' ', start) + 1;
  const end = line.indexOf(' ', start);
  return line.slice(start, end < 0 ? undefined : end);
}

/**
 * The visible mount at `path`: of the mounts stacked there, the one no other mount at the same place
 * sits on. Undefined when nothing is mounted exactly at `path`.
 */
export function topMountAt(mounts: readonly Mount[], path: string): Mount | undefined {
  const stacked = mounts.filter((m) => m.mountPoint === path);
  const covered = new Set(stacked.map((m) => m.parentId));
  return stacked.find((m) => !covered.has(m.mountId)) ?? stacked.at(-1);
}

/**
 * The mount a lookup of `path` ends on, walked from the root the way the kernel does: at each step the
 * topmost mount on the mount before it, so a mount hidden under a later one (a bind under a fresh /proc)
 * is not taken for the visible one. Undefined when mountinfo shows no root mount.
 */
export function visibleMountAt(mounts: readonly Mount[], path: string): Mount | undefined {
  const ids = new Set(mounts.map((m) => m.mountId));
  const onTop = (below: Mount, at: string): Mount => {
    let top = below;
    for (
      let next = mounts.find((m) => m.parentId === top.mountId && m.mountPoint === at);
      next;
      next = mounts.find((m) => m.parentId === top.mountId && m.mountPoint === at)
    )
      top = next;
    return top;
  };
  const root = mounts.find((m) => m.mountPoint === '/' && !ids.has(m.parentId));
  if (!root) return undefined;
  let current = onTop(root, '/');
  let prefix = '';
  for (const part of path.split('/').filter((p) => p !== '')) {
    prefix = `${prefix}/${part}`;
    current = onTop(current, prefix);
  }
  return current;
}

/** Mounts at `path` or anywhere below it, deepest first (the order they can be unmounted in). */
export function mountsAtOrBelow(mounts: readonly Mount[], path: string): Mount[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return mounts
    .filter((m) => m.mountPoint === path || m.mountPoint.startsWith(prefix))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}

export function isReadOnly(mount: Mount): boolean {
  return mount.options.includes('ro');
}

export function isFuse(mount: Mount): boolean {
  return mount.fsType === 'fuse' || mount.fsType.startsWith('fuse.');
}

/** The dev of the FUSE filesystem mounted at `path`, if one is. */
export function fuseDevAt(mounts: readonly Mount[], path: string): string | undefined {
  const top = topMountAt(mounts, path);
  return top && isFuse(top) ? top.dev : undefined;
}

/** The agent's own mount table. */
export function readOwnMounts(): Mount[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}
