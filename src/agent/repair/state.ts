// What the agent remembers across its own restarts, in a small JSON file on a tmpfs of its own under the
// anchor (which lives as long as the node's mounts do, and no longer: namespaces and dev numbers do not
// survive a reboot either).
//
// - knownDevs: the FUSE connections our lxcfs instances served. A dead mount is ours only if its dev is
//   here; another lxcfs on the node is never touched. A dev is forgotten once no mount uses it any more,
//   because only then may the kernel hand it to some other FUSE filesystem.
// - namespaces: per container mount namespace, the targets once seen live from our lxcfs, so a target
//   that later disappears is reported and restored as "missing". The agent has no API access to read
//   the webhook's status annotation, so this memory is how it knows what was injected. Bounded: see
//   remember.ts.
//
// Saving never throws: the state in memory is what the agent works from, a failed save (a full disk) is
// reported and retried at the next change, and repairs go on without it.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { RememberedTarget } from './classify.js';

export interface NamespaceMemory {
  /** The container's cgroup path: a new namespace that reuses an old inode number has another one. */
  cgroup: string;
  targets: Record<string, RememberedTarget>;
}

export interface AgentState {
  knownDevs: string[];
  namespaces: Record<string, NamespaceMemory>;
}

export function emptyState(): AgentState {
  return { knownDevs: [], namespaces: {} };
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // nothing more to do about it: the next save tries again
  }
}

/** How the last save went. */
export type SaveOutcome =
  { ok: true; bytes: number } | { ok: false; bytes: number; code: string; error: string };

export class StateFile {
  private lastWritten = '';
  /** Loaded from the legacy path: removed there once saved here. */
  private legacyPending = false;

  constructor(
    readonly path: string,
    /** Where an older agent kept the state; read when `path` has none. */
    private readonly legacyPath?: string,
  ) {}

  /** The saved state; an empty one when there is none or it cannot be read (e.g. a first start). */
  load(): AgentState {
    const own = this.read(this.path);
    const state = own ?? (this.legacyPath === undefined ? undefined : this.read(this.legacyPath));
    if (state === undefined) return emptyState();
    this.legacyPending = own === undefined;
    this.lastWritten = own === undefined ? '' : JSON.stringify(state);
    return state;
  }

  /**
   * Writes atomically (rename), and only when something changed; never throws. A failed write leaves
   * the last saved file as it was, removes its partial copy, and is tried again at the next call.
   */
  save(state: AgentState): SaveOutcome {
    const text = JSON.stringify(state);
    const bytes = Buffer.byteLength(text);
    if (text === this.lastWritten) return { ok: true, bytes };
    const tmp = `${this.path}.tmp`;
    try {
      writeFileSync(tmp, text);
      renameSync(tmp, this.path);
    } catch (err) {
      removeQuietly(tmp);
      const { code = 'EUNKNOWN', message } = err as NodeJS.ErrnoException;
      return { ok: false, bytes, code, error: message };
    }
    this.lastWritten = text;
    if (this.legacyPending && this.legacyPath !== undefined) {
      removeQuietly(this.legacyPath);
      this.legacyPending = false;
    }
    return { ok: true, bytes };
  }

  private read(path: string): AgentState | undefined {
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<AgentState>;
      return {
        knownDevs: Array.isArray(parsed.knownDevs) ? parsed.knownDevs : [],
        namespaces:
          parsed.namespaces && typeof parsed.namespaces === 'object' ? parsed.namespaces : {},
      };
    } catch {
      return undefined;
    }
  }
}
