// The read model of repair: every container mount namespace that has lxcfs files of ours, each target
// classified. Read-only (procfs only, never FUSE): sweeps act on it, `check node` reports it.
import { readFileSync } from 'node:fs';
import {
  isFuse,
  mountLinesAt,
  parseMountLines,
  topMountAt,
  type Mount,
} from '../host/mountinfo.js';
import type { ChosenProcess } from '../host/chosen-process.js';
import type { WatchStatus } from '../host/mount-watch.js';
import { listContainerNamespaces, type ContainerNamespace } from '../host/namespaces.js';
import { parsePodIdentity, type PodIdentity } from '../host/pod-identity.js';
import {
  classifyTargets,
  isOurMount,
  sameInput,
  type ClassifyInput,
  type TargetStatus,
} from './classify.js';
import { mustReadMountinfo } from './read-plan.js';
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
  return {
    podUid: view.identity.podUid,
    containerId: view.identity.containerId,
    mntNs: view.ns.mntNs,
    pid: view.ns.pid,
  };
}

/** Pod identities by namespace, valid while the representative pid stays the same process. */
export type IdentityCache = Map<string, { pid: number; identity: PodIdentity }>;

/** A namespace's classification and what follows from its mounts, with the input they came from. */
interface Classified extends Pick<NamespaceView, 'statuses' | 'fuseDevs' | 'ourTargets'> {
  input: ClassifyInput;
}

/** What a survey keeps for the next one, per namespace; each entry is about one representative process. */
export interface SurveyMemory {
  identities: IdentityCache;
  /** See listContainerNamespaces. */
  representatives: Map<string, ChosenProcess>;
  /**
   * The mounts at our targets as last read (all the survey needs of a mountinfo), through which pid, and
   * their lines: a table read again with the same lines keeps the same Mount[], so its classification stands.
   */
  mounts: Map<string, { pid: number; lines: string; mounts: Mount[] }>;
  /** Reused while its input objects are the same (see sameInput). */
  classified: Map<string, Classified>;
  /** The state's knownDevs as a set, rebuilt only when the list changes, so classifications stand. */
  knownDevs?: { list: readonly string[]; set: ReadonlySet<string> };
}

export function newSurveyMemory(): SurveyMemory {
  return {
    identities: new Map(),
    representatives: new Map(),
    mounts: new Map(),
    classified: new Map(),
  };
}

/** What a namespace without memory remembers: one object, so its classification input stays the same. */
const NOTHING_REMEMBERED: ClassifyInput['remembered'] = Object.freeze({});

/** What the agent knows before a survey: the running lxcfs' connection and its remembered state. */
export interface SurveyInput {
  liveDev: string;
  state: AgentState;
}

export interface SurveyReads {
  readAll: boolean;
  /** The mount watcher's view (host/mount-watch.ts); none when notifications are off. */
  watch?: {
    status(mntNs: string): WatchStatus | undefined;
    /** Called before a namespace's mountinfo is read. */
    reading(mntNs: string): void;
  };
}

export interface Survey {
  /** Namespaces with targets of ours. */
  views: NamespaceView[];
  /** Every container namespace found, ours or not. */
  namespaces: ContainerNamespace[];
  /** How many mountinfo files were read (the others were unchanged since the last read). */
  mountinfoRead: number;
  /** Namespaces of `views` whose mounts at our targets are new to this memory or changed since it last read them. */
  changed: string[];
}

/**
 * Every container namespace that has targets of ours, classified against the running lxcfs' connection
 * (`liveDev`; any value that is no connection when none runs). Namespaces without anything of ours
 * cost one mountinfo read each, or none when `reads` knows their table has not changed. A namespace is
 * classified again whenever any input changed, read or not: an lxcfs restart changes the live connection
 * without any mount event. Otherwise its last classification stands.
 */
export function survey(
  config: SurveyConfig,
  known: SurveyInput,
  memory = newSurveyMemory(),
  reads: SurveyReads = { readAll: true },
): Survey {
  const { liveDev, state } = known;
  if (memory.knownDevs?.list !== state.knownDevs)
    memory.knownDevs = { list: state.knownDevs, set: new Set(state.knownDevs) };
  const knownDevs = memory.knownDevs.set;
  const targets = new Set(config.files);
  const { identities } = memory;
  let mountinfoRead = 0;
  const changedMounts = new Set<string>();
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
  /** undefined once the process has exited */
  const mountsOf = (ns: ContainerNamespace): Mount[] | undefined => {
    const cached = memory.mounts.get(ns.mntNs);
    if (
      cached &&
      !mustReadMountinfo({
        pid: ns.pid,
        cachedPid: cached.pid,
        watch: reads.watch?.status(ns.mntNs),
        readAll: reads.readAll,
      })
    )
      return cached.mounts;
    reads.watch?.reading(ns.mntNs);
    mountinfoRead++;
    const mountinfo = readProcFile(`${config.proc}/${ns.pid}/mountinfo`);
    if (mountinfo === undefined) return undefined;
    const lines = mountLinesAt(mountinfo, targets).join('\n');
    if (cached?.lines === lines) {
      memory.mounts.set(ns.mntNs, { pid: ns.pid, lines, mounts: cached.mounts });
      return cached.mounts;
    }
    changedMounts.add(ns.mntNs);
    const mounts = parseMountLines(lines.split('\n'));
    memory.mounts.set(ns.mntNs, { pid: ns.pid, lines, mounts });
    return mounts;
  };
  const classify = (mntNs: string, input: ClassifyInput): Classified => {
    const cached = memory.classified.get(mntNs);
    if (cached && sameInput(cached.input, input)) return cached;
    const { mounts } = input;
    const ourTargets = config.files.filter((target) => {
      const top = topMountAt(mounts, target);
      return top !== undefined && isOurMount(top, input);
    });
    const classified = {
      input,
      statuses: classifyTargets(input),
      fuseDevs: new Set(mounts.filter(isFuse).map((m) => m.dev)),
      ourTargets,
    };
    memory.classified.set(mntNs, classified);
    return classified;
  };

  const namespaces = listContainerNamespaces(config.proc, memory.representatives);
  const views: NamespaceView[] = [];
  for (const ns of namespaces) {
    const mounts = mountsOf(ns);
    if (mounts === undefined) continue;
    const known = state.namespaces[ns.mntNs];
    // The same inode number on another cgroup is a new namespace: what we remember is not about it.
    const remembered =
      known && known.cgroup === identityOf(ns)?.cgroup ? known.targets : NOTHING_REMEMBERED;
    const { statuses, fuseDevs, ourTargets } = classify(ns.mntNs, {
      mounts,
      liveDev,
      knownDevs,
      remembered,
      files: config.files,
    });
    const identity = statuses.length > 0 ? identityOf(ns) : undefined;
    if (identity === undefined) continue;
    views.push({ ns, identity, statuses, fuseDevs, ourTargets });
  }
  const seen = new Set(views.map((v) => v.ns.mntNs));
  for (const mntNs of identities.keys()) if (!seen.has(mntNs)) identities.delete(mntNs);
  const listed = new Set(namespaces.map((ns) => ns.mntNs));
  for (const mntNs of memory.mounts.keys()) if (!listed.has(mntNs)) memory.mounts.delete(mntNs);
  for (const mntNs of memory.classified.keys())
    if (!listed.has(mntNs)) memory.classified.delete(mntNs);
  const changed = views.filter((v) => changedMounts.has(v.ns.mntNs)).map((v) => v.ns.mntNs);
  return { views, namespaces, mountinfoRead, changed };
}

/** How many targets of `views` are in `state`. */
export function countTargets(
  views: readonly NamespaceView[],
  state: TargetStatus['state'],
): number {
  return views.reduce((n, v) => n + v.statuses.filter((s) => s.state === state).length, 0);
}
