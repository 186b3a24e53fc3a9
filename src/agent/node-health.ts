// Node health, computed one way for the agent's /readyz and for `check node`: facts about lxcfs, the
// anchor and the containers go in, one line per problem (with its fix) comes out. `inspectNode` gathers
// the facts for `check node` independently of the running agent (which may be what is broken), and only
// looks: nothing is mounted, remounted or saved.
import {
  ALLOWED_FILES,
  DEFAULT_PROBE_TIMEOUT_MS,
  INSTALL,
  NATIVE_HELPER_TIMEOUT_MS,
  PEEK_SAMPLE_SIZE,
} from '../config/defaults.js';
import {
  cgroup2OptionsProblem,
  readCgroup2Options,
  type Cgroup2Options,
} from './host/cgroup2-options.js';
import { fuseDevAt, readOwnMounts } from './host/mountinfo.js';
import { checkMountApi, type MountApiSupport } from './host/native.js';
import { agentLayout, type NodePaths } from './layout.js';
import { inspectAnchor, type AnchorState } from './lxcfs/anchor.js';
import { lxcfsCgroupProblem } from './lxcfs/cgroup-namespace.js';
import { probeLxcfs, type ProbeResult } from './lxcfs/probe.js';
import { findOtherLxcfs, otherLxcfsProblems, type OtherLxcfs } from './lxcfs/others.js';
import { findLxcfsServing } from './lxcfs/process.js';
import { readLxcfsVersion, resetsCgroupOptions, type LxcfsVersion } from './lxcfs/version.js';
import { peekContainers, type PeekReport } from './repair/peek.js';
import { StateFile } from './repair/state.js';
import { countTargets, survey, type NamespaceView } from './repair/survey.js';

export interface NodeFacts {
  anchorRoot: string;
  fuseMount: string;
  /** An lxcfs of ours serves the FUSE mount. */
  lxcfsRunning: boolean;
  /** Something is mounted on the FUSE mountpoint (a dead lxcfs leaves its mount). */
  fuseMounted: boolean;
  /** The last read through lxcfs; absent when there was nothing to read from. */
  probe?: ProbeResult;
  anchor: AnchorState;
  /** Absent where it was not checked (the agent checks it once, at start). */
  mountApi?: MountApiSupport;
  /** Problems with the cgroup namespace lxcfs runs in (it must be the host's). */
  lxcfsCgroupProblems?: string[];
  /** The agent's own: its first sweep has looked at every container. */
  firstSweepDone?: boolean;
  /** What `check node` finds in the containers. */
  containers?: { stale: number; missing: number; reads: PeekReport };
  /** `check node` only: the version of the lxcfs of ours that runs, when it could be read. */
  lxcfsVersion?: LxcfsVersion;
  /** `check node` only: the node's cgroup2 mount options. */
  cgroup2?: Cgroup2Options;
  /** `check node` only: lxcfs processes that are not ours. */
  otherLxcfs?: OtherLxcfs[];
}

/** Where the agent's log is, by the install's real names, so a hint can be pasted as it is. */
const AGENT_LOGS = `kubectl -n ${INSTALL.namespace} logs ds/${INSTALL.agentDaemonSet}`;

/**
 * One line per problem, each saying something the others do not: lxcfs down and its mount gone are one
 * line, and anchor directories in the same state share one.
 */
export function nodeProblems(facts: NodeFacts): string[] {
  const problems: string[] = [];
  if (!facts.lxcfsRunning) {
    const mount = facts.fuseMounted
      ? `a dead lxcfs mount is left on ${facts.fuseMount}`
      : `nothing is mounted on ${facts.fuseMount}`;
    problems.push(`no lxcfs runs and ${mount}: is the agent running? (${AGENT_LOGS})`);
  } else if (!facts.fuseMounted) {
    problems.push(`nothing is mounted on ${facts.fuseMount}`);
  }
  problems.push(...(facts.lxcfsCgroupProblems ?? []));
  problems.push(...nodeLxcfsNeighbourProblems(facts));
  if (facts.probe && !facts.probe.ok)
    problems.push(
      `lxcfs does not answer (${facts.probe.error}): the agent restarts a hung lxcfs after its grace period`,
    );
  if (!facts.anchor.tmpfs)
    problems.push(`${facts.anchorRoot} is not a tmpfs anchor: the agent mounts one at start`);
  for (const [state, one, several] of [
    ['dead', 'is a dead lxcfs mount', 'are dead lxcfs mounts'],
    ['absent', 'is not bound to lxcfs', 'are not bound to lxcfs'],
  ] as const) {
    const dirs = Object.entries(facts.anchor.binds)
      .filter(([, s]) => s === state)
      .map(([dir]) => `${facts.anchorRoot}/${dir}`);
    if (dirs.length > 0)
      problems.push(
        `${dirs.join(' and ')} ${dirs.length > 1 ? several : one}: new pods cannot start`,
      );
  }
  if (facts.mountApi && !facts.mountApi.supported)
    problems.push(
      `the remount helper cannot work here (${facts.mountApi.errno}): needs Linux >= 5.2 and privileges`,
    );
  if (facts.firstSweepDone === false)
    problems.push('the first sweep over running containers is not done yet');
  const found = facts.containers;
  if (found && found.stale + found.missing > 0) {
    problems.push(
      `${found.stale} stale and ${found.missing} missing lxcfs files in running containers: the agent repairs them at its next sweep`,
    );
  }
  if (found && found.reads.unreadable.length > 0) {
    const { reads } = found;
    problems.push(
      `${reads.unreadable.length} of ${reads.files} lxcfs files read inside ${reads.containers} sampled containers failed: ` +
        `processes there get errors or wrong values; see the agent log (${AGENT_LOGS})`,
    );
  }
  const refused = found?.reads.notEntered ?? [];
  if (refused.length > 0) {
    // Never a silent pass: a container not entered was not checked. A pid reused meanwhile clears on a
    // second run; the host's namespace unreadable does not.
    const reasons = [...new Set(refused.map((r) => r.notEntered))].join(', ');
    problems.push(
      `${refused.length} sampled containers were not entered (${reasons}: ${refused[0]!.error}): ` +
        'their files were not read; run the check again, and if "host-unknown", run it where the host\'s /proc/1 can be read (privileged, hostPID)',
    );
  }
  return problems;
}

/**
 * What lxcfs does to the node around it: cgroup2 options an lxcfs older than 6.0.6 cleared (naming the
 * likely culprit), and lxcfs processes other than ours. Each its own line.
 */
function nodeLxcfsNeighbourProblems(facts: NodeFacts): string[] {
  const others = facts.otherLxcfs ?? [];
  const ours = facts.lxcfsVersion;
  const cause =
    ours !== undefined && resetsCgroupOptions(ours)
      ? `this agent's lxcfs ${ours.text} clears them each time it starts (lxc/lxcfs#681, fixed in 6.0.6): run an lxcfs >= 6.0.6, such as the agent image's 7.0.0`
      : others.length > 0
        ? 'another lxcfs on this node (see below) clears them each time it starts if it is older than 6.0.6 (lxc/lxcfs#681)'
        : undefined;
  const options = cgroup2OptionsProblem(facts.cgroup2, cause);
  return [...(options === undefined ? [] : [options]), ...otherLxcfsProblems(others)];
}

export interface NodeReport extends NodeFacts {
  lxcfsPids: number[];
  /** dev of the FUSE mount at the fuse mountpoint, live or not. */
  fuseDev?: string;
  mountApi: MountApiSupport;
  /** Container namespaces with targets of ours. */
  views: NamespaceView[];
  containers: { stale: number; missing: number; reads: PeekReport };
  /** One line per thing that is wrong; empty when the node is healthy. */
  problems: string[];
}

export async function inspectNode(paths: NodePaths): Promise<NodeReport> {
  const { layout, stateFile } = agentLayout(paths);
  const lxcfsPids = findLxcfsServing(paths.proc, layout.fuseMount);
  const mounts = readOwnMounts();
  const fuseDev = fuseDevAt(mounts, layout.fuseMount);
  const lxcfsRunning = lxcfsPids.length > 0;
  const lxcfsCgroupProblems = lxcfsPids
    .map((pid) => lxcfsCgroupProblem(paths.proc, pid))
    .filter((p): p is string => p !== undefined);
  const probe =
    fuseDev !== undefined && lxcfsRunning
      ? await probeLxcfs(layout.helper, layout.fuseMount, DEFAULT_PROBE_TIMEOUT_MS)
      : undefined;
  // Mounts on the running lxcfs' connection are live even while it hangs (the probe says so); with no
  // lxcfs running every mount of ours is stale.
  const liveDev = lxcfsRunning ? fuseDev : undefined;
  const anchor = inspectAnchor(mounts, layout.root, liveDev);
  const mountApi = await checkMountApi(layout.helper, NATIVE_HELPER_TIMEOUT_MS);

  const { views } = survey(
    { proc: paths.proc, files: ALLOWED_FILES },
    { liveDev: liveDev ?? 'none', state: new StateFile(stateFile).load() },
  );
  const reads = await peekContainers(layout.helper, paths.proc, views, {
    sampleSize: PEEK_SAMPLE_SIZE,
    timeoutMs: DEFAULT_PROBE_TIMEOUT_MS,
  });
  const containers = {
    stale: countTargets(views, 'stale'),
    missing: countTargets(views, 'missing'),
    reads,
  };

  const lxcfsVersion = lxcfsRunning
    ? readLxcfsVersion(`${paths.proc}/${lxcfsPids[0]}/exe`, NATIVE_HELPER_TIMEOUT_MS)
    : undefined;
  const cgroup2 = readCgroup2Options(paths.proc);
  const otherLxcfs = findOtherLxcfs(paths.proc, layout.fuseMount);

  const facts = {
    anchorRoot: layout.root,
    fuseMount: layout.fuseMount,
    lxcfsRunning,
    fuseMounted: fuseDev !== undefined,
    lxcfsCgroupProblems,
    probe,
    anchor,
    mountApi,
    containers,
    ...(lxcfsVersion === undefined ? {} : { lxcfsVersion }),
    ...(cgroup2 === undefined ? {} : { cgroup2 }),
    otherLxcfs,
  };
  return { ...facts, lxcfsPids, fuseDev, views, problems: nodeProblems(facts) };
}
