// What the agent remembers across its own restarts, in a small JSON file on the anchor tmpfs (which
// lives as long as the node's mounts do, and no longer: namespaces and dev numbers do not survive a
// reboot either).
//
// - knownDevs: the FUSE connections our lxcfs instances served. A dead mount is ours only if its dev is
//   here; another lxcfs on the node is never touched. A dev is forgotten once no mount uses it any more,
//   because only then may the kernel hand it to some other FUSE filesystem.
// - namespaces: per container mount namespace, the targets once seen live from our lxcfs, so a target
//   that later disappears is reported and restored as "missing". The agent has no API access to read
//   the webhook's status annotation, so this memory is how it knows what was injected.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
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

export class StateFile {
  private lastWritten = '';

  constructor(readonly path: string) {}

  /** The saved state; an empty one when there is none or it cannot be read (e.g. a first start). */
  load(): AgentState {
    try {
      const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<AgentState>;
      const state: AgentState = {
        knownDevs: Array.isArray(parsed.knownDevs) ? parsed.knownDevs : [],
        namespaces:
          parsed.namespaces && typeof parsed.namespaces === 'object' ? parsed.namespaces : {},
      };
      this.lastWritten = JSON.stringify(state);
      return state;
    } catch {
      return emptyState();
    }
  }

  /** Writes atomically (rename), and only when something changed. */
  save(state: AgentState): void {
    const text = JSON.stringify(state);
    if (text === this.lastWritten) return;
    writeFileSync(`${this.path}.tmp`, text);
    renameSync(`${this.path}.tmp`, this.path);
    this.lastWritten = text;
  }
}
