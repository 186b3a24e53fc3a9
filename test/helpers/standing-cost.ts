// The agent's standing cost on a quiet node: CPU per second of the agent, its helper processes and lxcfs
// over a window in which nothing changes, and their resident memory. CPU is user + system time from
// /proc/<pid>/stat, so it does not depend on what else the machine runs:
//   agent    utime + stime of the agent process (all its threads);
//   helpers  utime + stime of its long-running children other than lxcfs (the mount watcher, …), plus
//            cutime + cstime of the agent: the short-lived helpers it ran and waited for (probes, reads
//            inside containers), whose own children count there too;
//   lxcfs    utime + stime of the lxcfs process.
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_S = 100; // USER_HZ: what /proc/<pid>/stat counts in on every Linux architecture we run on

interface ProcessTimes {
  /** utime + stime, ms */
  own: number;
  /** cutime + cstime (waited-for children), ms */
  children: number;
}

/** undefined once the process has exited. */
export function cpuTimes(pid: number): ProcessTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (i: number) => (Number(f[i]) * 1000) / CLOCK_TICKS_PER_S;
    return { own: ms(11) + ms(12), children: ms(13) + ms(14) };
  } catch {
    return undefined;
  }
}

/** A /proc/<pid>/status figure in MiB; 0 once the process has exited. */
function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    )?.[1];
    return Number(kb) / 1024;
  } catch {
    return 0;
  }
}

export const rssMiB = (pid: number) => statusMiB(pid, 'VmRSS');
/** The highest RSS the process ever had. */
export const peakRssMiB = (pid: number) => statusMiB(pid, 'VmHWM');

/** Anonymous (heap, stacks, V8's spaces) MiB of a process's RSS; the rest is file-backed (mostly the node binary's code). */
function anonymousMiB(pid: number): number {
  try {
    const kb = /^Anonymous:\s+(\d+) kB$/m.exec(
      readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'),
    )?.[1];
    return Number(kb) / 1024;
  } catch {
    return 0;
  }
}

/** The process's children (all its threads' children). */
function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text !== '') pids.push(...text.split(' ').map(Number));
    } catch {
      // thread gone
    }
  }
  return pids;
}

export interface StandingCost {
  windowS: number;
  agentMsPerS: number;
  helpersMsPerS: number;
  lxcfsMsPerS: number;
  agentRssMiB: number;
  agentAnonymousMiB: number;
  /** Sum over the long-running helpers at the end of the window. */
  helpersRssMiB: number;
  /** How many long-running helpers there were at the end. */
  helpers: number;
  lxcfsRssMiB: number;
}

/**
 * Measures over `windowMs`. Long-running helpers are the agent's children alive at both ends of the
 * window (a helper that ran across one end counts in neither: short-lived ones are seen at their exit, in
 * the agent's cutime/cstime).
 */
export async function measureStandingCost(
  agentPid: number,
  lxcfsPid: number,
  windowMs: number,
): Promise<StandingCost> {
  const helperTimes = () =>
    new Map(
      childrenOf(agentPid)
        .filter((pid) => pid !== lxcfsPid)
        .map((pid) => [pid, cpuTimes(pid)?.own] as const)
        .filter((e): e is [number, number] => e[1] !== undefined),
    );
  const agentBefore = cpuTimes(agentPid)!;
  const lxcfsBefore = cpuTimes(lxcfsPid)!;
  const helpersBefore = helperTimes();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const agentAfter = cpuTimes(agentPid)!;
  const lxcfsAfter = cpuTimes(lxcfsPid)!;
  const helpersAfter = helperTimes();
  const seconds = (performance.now() - started) / 1000;
  let helpersMs = agentAfter.children - agentBefore.children;
  let helpersRssMiB = 0;
  let helpers = 0;
  for (const [pid, after] of helpersAfter) {
    const before = helpersBefore.get(pid);
    if (before === undefined) continue;
    helpersMs += after - before;
    helpersRssMiB += rssMiB(pid);
    helpers++;
  }
  return {
    windowS: seconds,
    agentMsPerS: (agentAfter.own - agentBefore.own) / seconds,
    helpersMsPerS: helpersMs / seconds,
    lxcfsMsPerS: (lxcfsAfter.own - lxcfsBefore.own) / seconds,
    agentRssMiB: rssMiB(agentPid),
    agentAnonymousMiB: anonymousMiB(agentPid),
    helpersRssMiB,
    helpers,
    lxcfsRssMiB: rssMiB(lxcfsPid),
  };
}

export function formatStandingCost(c: StandingCost): string {
  return (
    `CPU agent ${c.agentMsPerS.toFixed(2)} ms/s, helpers ${c.helpersMsPerS.toFixed(2)} ms/s, lxcfs ${c.lxcfsMsPerS.toFixed(2)} ms/s` +
    ` over ${c.windowS.toFixed(0)} s; RSS agent ${c.agentRssMiB.toFixed(1)} MiB (${c.agentAnonymousMiB.toFixed(1)} anonymous), helpers ${c.helpersRssMiB.toFixed(1)} MiB (${c.helpers}), lxcfs ${c.lxcfsRssMiB.toFixed(1)} MiB`
  );
}
