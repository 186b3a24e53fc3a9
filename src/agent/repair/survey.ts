// The read model of repair: every container mount namespace that has lxcfs files of ours, each target
// classified. Read-only (procfs only, never FUSE): sweeps act on it, `check node` reports it.
import { readFileSync } from 'node:fs';
import { isFuse, parseMountinfo, topMountAt } from '../host/mountinfo.js';
import { listContainerNamespaces, type ContainerNamespace } from '../host/namespaces.js';
import { parsePodIdentity, type PodIdentity } from '../host/pod-identity.js';
import { classifyTargets, isOurMount, type TargetStatus } from './classify.js';
import type { AgentState } from './state.js';

export interface SurveyConfig {
  proc: string;
  /** The files the webhook may inject: the only targets ever looked at. */
  files: readonly string[];
}

/** One container namespace as a survey sees it. */
export interface NamespaceView {
  ns: ContainerNamespace;
  identity: PodIdentity;
  /** Our targets in it (never empty). */
  statuses: TargetStatus[];
  /** devs of the FUSE mounts on its targets, to know which old lxcfs connections still matter. */
  fuseDevs: Set<string>;
  /** Targets whose visible mount is on a connection of ours, classified or not: what `peek` reads. */
  ourTargets: string[];
}

/** A procfs file's text; undefined when its process has exited. */
function readProcFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The stable log fields naming a container. */
export function containerFields(view: NamespaceView) {
  return { podUid: view.identity.podUid, containerId: view.identity.containerId, mntNs: view.ns.mntNs, pid: view.ns.pid };
}

/** Pod identities by namespace, valid while the representative pid stays the same process. */
export type IdentityCache = Map<string, { pid: number; identity: PodIdentity }>;

/**
 * Every container namespace that has targets of ours, classified against the running lxcfs' connection
 * (`liveDev`; any value that is no connection when none runs). Namespaces without anything of ours
 * cost one mountinfo read each.
 */
export function survey(config: SurveyConfig, liveDev: string, state: AgentState, identities: IdentityCache = new Map()): NamespaceView[] {
  const knownDevs = new Set(state.knownDevs);
  const targets = new Set(config.files);
  /** undefined once the process has exited */
  const identityOf = (ns: ContainerNamespace): PodIdentity | undefined => {
    const cached = identities.get(ns.mntNs);
    if (cached?.pid === ns.pid) return cached.identity;
    const cgroup = readProcFile(`${config.proc}/${ns.pid}/cgroup`);
    if (cgroup === undefined) return undefined;
    const identity = parsePodIdentity(cgroup);
    identities.set(ns.mntNs, { pid: ns.pid, identity });
    return identity;
  };

  const views: NamespaceView[] = [];
  for (const ns of listContainerNamespaces(config.proc)) {
    const mountinfo = readProcFile(`${config.proc}/${ns.pid}/mountinfo`);
    if (mountinfo === undefined) continue;
    const mounts = parseMountinfo(mountinfo, targets);
    const memory = state.namespaces[ns.mntNs];
    // The same inode number on another cgroup is a new namespace: what we remember is not about it.
    const remembered = memory && memory.cgroup === identityOf(ns)?.cgroup ? memory.targets : {};
    const statuses = classifyTargets({ mounts, liveDev, knownDevs, remembered, files: config.files });
    const identity = statuses.length > 0 ? identityOf(ns) : undefined;
    if (identity === undefined) continue;
    const devs = { liveDev, knownDevs };
    const ourTargets = config.files.filter((target) => {
      const top = topMountAt(mounts, target);
      return top !== undefined && isOurMount(top, devs);
    });
    views.push({ ns, identity, statuses, fuseDevs: new Set(mounts.filter(isFuse).map((m) => m.dev)), ourTargets });
  }
  const seen = new Set(views.map((v) => v.ns.mntNs));
  for (const mntNs of identities.keys()) if (!seen.has(mntNs)) identities.delete(mntNs);
  return views;
}

/** How many targets of `views` are in `state`. */
export function countTargets(views: readonly NamespaceView[], state: TargetStatus['state']): number {
  return views.reduce((n, v) => n + v.statuses.filter((s) => s.state === state).length, 0);
}
