// What `lxcfs-webhook check node` shows: the node's lxcfs setup as it is, looked at independently of
// the running agent (which may be the thing that is broken). Read-only: nothing is mounted, remounted
// or saved.
import { DEFAULT_PROBE_TIMEOUT_MS, NATIVE_HELPER_TIMEOUT_MS, PEEK_SAMPLE_SIZE } from '../config/defaults.js';
import { fuseDevAt, inspectAnchor, readOwnMounts, type AnchorState } from './anchor.js';
import { agentLayout, sweepConfig, type AgentOptions } from './agent.js';
import { lxcfsCgroupProblem } from './cgroup-namespace.js';
import { findLxcfsServing } from './lxcfs-process.js';
import { checkMountApi, type MountApiSupport } from './native.js';
import { peekContainers, type PeekReport } from './peek.js';
import { probeLxcfs, type ProbeResult } from './probe.js';
import { StateFile } from './state.js';
import { survey, type NamespaceView } from './sweep.js';

export interface NodeReport {
  anchorRoot: string;
  fuseMount: string;
  lxcfsPids: number[];
  /** dev of the FUSE mount at the fuse mountpoint, live or not. */
  fuseDev?: string;
  probe?: ProbeResult;
  anchor: AnchorState;
  mountApi: MountApiSupport;
  /** Container namespaces with targets of ours. */
  containers: NamespaceView[];
  stale: number;
  missing: number;
  /** One byte of each of our files read inside a sample of those containers. */
  reads: PeekReport;
  /** One line per thing that is wrong; empty when the node is healthy. */
  problems: string[];
}

export async function inspectNode(options: Pick<AgentOptions, 'lxcfsRoot' | 'fuseMount' | 'remountHelper' | 'proc'>): Promise<NodeReport> {
  const { layout, stateFile } = agentLayout(options);
  const problems: string[] = [];
  const lxcfsPids = findLxcfsServing(options.proc, layout.fuseMount);
  const fuseDev = fuseDevAt(readOwnMounts(), layout.fuseMount);
  if (lxcfsPids.length === 0) problems.push(`no lxcfs runs on ${layout.fuseMount}: is the agent running? (kubectl -n <ns> logs ds/<agent>)`);
  if (fuseDev === undefined) problems.push(`nothing is mounted on ${layout.fuseMount}`);
  for (const pid of lxcfsPids) problems.push(...[lxcfsCgroupProblem(options.proc, pid)].filter((p) => p !== undefined));

  const probe = fuseDev !== undefined && lxcfsPids.length > 0 ? await probeLxcfs(layout.helper, layout.fuseMount, DEFAULT_PROBE_TIMEOUT_MS) : undefined;
  if (probe && !probe.ok) problems.push(`lxcfs does not answer (${probe.error}): the agent restarts a hung lxcfs after its grace period`);
  // Mounts on the running lxcfs' connection are live even while it hangs (that is reported above);
  // with no lxcfs running every mount of ours is stale.
  const liveDev = lxcfsPids.length > 0 ? fuseDev : undefined;

  const mounts = readOwnMounts();
  const anchor = inspectAnchor(mounts, layout.root, liveDev);
  if (!anchor.tmpfs) problems.push(`${layout.root} is not a tmpfs anchor: the agent mounts one at start`);
  for (const [dir, state] of Object.entries(anchor.binds)) {
    if (state !== 'live') problems.push(`${layout.root}/${dir} is ${state === 'dead' ? 'a dead lxcfs mount' : 'not bound to lxcfs'}: new pods cannot start`);
  }

  const mountApi = await checkMountApi(layout.helper, NATIVE_HELPER_TIMEOUT_MS);
  if (!mountApi.supported) problems.push(`the remount helper cannot work here (${mountApi.errno}): needs Linux >= 5.2 and privileges`);

  const state = new StateFile(stateFile).load();
  const containers = survey(sweepConfig(layout, options.proc), liveDev ?? 'none', state);
  const count = (state: string) => containers.reduce((n, v) => n + v.statuses.filter((s) => s.state === state).length, 0);
  const stale = count('stale');
  const missing = count('missing');
  if (stale + missing > 0) problems.push(`${stale} stale and ${missing} missing lxcfs files in running containers: the agent repairs them at its next sweep`);

  const reads = await peekContainers(layout.helper, options.proc, containers, { sampleSize: PEEK_SAMPLE_SIZE, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
  if (reads.unreadable.length > 0) {
    problems.push(
      `${reads.unreadable.length} of ${reads.files} lxcfs files read inside ${reads.containers} sampled containers failed: ` +
        'processes there get errors or wrong values; see the agent log (kubectl -n <ns> logs ds/<agent>)',
    );
  }

  return { anchorRoot: layout.root, fuseMount: layout.fuseMount, lxcfsPids, fuseDev, probe, anchor, mountApi, containers, stale, missing, reads, problems };
}
