// What a sweep teaches the agent's state (state.ts): the targets of every namespace with something of
// ours (dropping namespaces that are gone), and the lxcfs connections still referenced by some mount.
// Pure. An idle sweep teaches nothing, and then gets back the very same objects: the sweeper saves only
// a state that changed, and the survey's cached classifications, keyed on these objects, stand.
import type { TargetStatus } from './classify.js';
import type { AgentState, NamespaceMemory } from './state.js';
import type { NamespaceView } from './survey.js';

/** Whether some status is not in `targets` as it is. */
function teaches(targets: NamespaceMemory['targets'], statuses: readonly TargetStatus[]): boolean {
  for (const s of statuses) {
    const known = targets[s.target];
    if (known?.lxcfsPath !== s.lxcfsPath || known.readOnly !== s.readOnly) return true;
  }
  return false;
}

/** `before` when the statuses add nothing to it, else a new memory holding both. */
function namespaceMemory(
  before: NamespaceMemory | undefined,
  cgroup: string,
  statuses: readonly TargetStatus[],
): NamespaceMemory {
  // The same inode number on another cgroup is a new namespace: what was remembered is not about it.
  const kept = before?.cgroup === cgroup ? before : undefined;
  if (kept && !teaches(kept.targets, statuses)) return kept;
  const targets = { ...kept?.targets };
  for (const s of statuses) targets[s.target] = { lxcfsPath: s.lxcfsPath, readOnly: s.readOnly };
  return { cgroup, targets };
}

/** The state after a sweep saw `views`; `state` itself when nothing changed. */
export function remember(
  state: AgentState,
  views: readonly NamespaceView[],
  liveDev: string,
): AgentState {
  let changed = views.length !== Object.keys(state.namespaces).length;
  const entries: Array<[string, NamespaceMemory]> = [];
  const referenced = new Set([liveDev]);
  for (const view of views) {
    const before = state.namespaces[view.ns.mntNs];
    const memory = namespaceMemory(before, view.identity.cgroup, view.statuses);
    // Views name distinct namespaces: with as many as before and each found, the set is the same.
    changed ||= memory !== before;
    entries.push([view.ns.mntNs, memory]);
    for (const dev of view.fuseDevs) if (state.knownDevs.includes(dev)) referenced.add(dev);
  }
  const knownDevs = state.knownDevs.every((d) => referenced.has(d))
    ? state.knownDevs
    : state.knownDevs.filter((d) => referenced.has(d));
  if (!changed && knownDevs === state.knownDevs) return state;
  return { knownDevs, namespaces: changed ? Object.fromEntries(entries) : state.namespaces };
}
