// How the agent names the process it chose to stand for a container's mount namespace, so that the
// native helper acts on that very process or on nothing. A pid alone is not enough: by the time the
// helper runs the process may have exited and its pid gone to another one, even to a process of the
// host, and entering "by pid" would mount lxcfs over the host's own files. So a choice carries the
// process's start time and the namespace it was seen in; the helper checks both through one descriptor
// of the process's /proc directory, and refuses the host's namespace and the agent's own outright
// (native/lxcfs-remount.c, "identity"). The agent refuses them too before it asks.
import { readFileSync, readlinkSync } from 'node:fs';
import type { HelperResult } from './native.js';

export interface ChosenProcess {
  /** The namespace the process was seen in, as the kernel prints it: `mnt:[4026532301]`. */
  mntNs: string;
  pid: number;
  /** When the process started (clock ticks after boot, field 22 of its stat): pid and start time name one process. */
  startTime: number;
}

/** Why the helper (or the agent) would not enter a namespace (`notEntered` in results and logs). */
export type NotEntered =
  /** The pid belongs to another process than the one chosen (it exited, and the pid was reused). */
  | 'other-process'
  /** The chosen process is in another mount namespace than the one surveyed. */
  | 'other-namespace'
  /** The namespace is the host's (PID 1's or the initial one) or the agent's own, where lxcfs runs. */
  | 'host-namespace'
  /** The host's namespace cannot be read, so none is entered. */
  | 'host-unknown';

/** When the process started; undefined once it has exited. */
export function readStartTime(proc: string, pid: number): number | undefined {
  try {
    const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses; starttime is field 22.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Mount namespaces the agent never enters, with what each is; `known` is false when the host's cannot be read. */
export interface ForbiddenNamespaces {
  known: boolean;
  whose: Map<string, string>;
}

/**
 * PID 1's mount namespace in `proc` (the host's, also when the agent runs in a mount namespace of its
 * own with hostPID), kthreadd's (the initial one, where PID 1's cannot be read, as some sandboxes forbid
 * even to root), and the agent's own, where lxcfs runs. The helper works out the same set itself.
 */
export function forbiddenNamespaces(proc: string): ForbiddenNamespaces {
  const whose = new Map<string, string>();
  const add = (ns: string | undefined, what: string) =>
    ns !== undefined && !whose.has(ns) && whose.set(ns, what);
  add(readLink(`${proc}/1/ns/mnt`), "the host's mount namespace (PID 1's)");
  let kthreadd = false;
  try {
    kthreadd = readFileSync(`${proc}/2/stat`, 'utf8').startsWith('2 (kthreadd) ');
  } catch {
    // no pid 2 here
  }
  if (kthreadd)
    add(readLink(`${proc}/2/ns/mnt`), "the host's mount namespace (the initial one, kthreadd's)");
  const known = whose.size > 0;
  add(readLink('/proc/self/ns/mnt'), "the agent's own mount namespace, where lxcfs runs");
  return { known, whose };
}

/** Why the agent must not ask the helper into `mntNs` at all, in the helper's words; undefined when it may. */
export function refuseBeforeAsking(
  forbidden: ForbiddenNamespaces,
  proc: string,
  mntNs: string,
): { notEntered: NotEntered; error: string } | undefined {
  if (!forbidden.known) {
    return {
      notEntered: 'host-unknown',
      error: `cannot read the mount namespace of ${proc}/1 nor of kthreadd: without knowing the host's, none is entered`,
    };
  }
  const whose = forbidden.whose.get(mntNs);
  return whose === undefined
    ? undefined
    : { notEntered: 'host-namespace', error: `${mntNs} is ${whose}: never entered` };
}

/** The helper's arguments naming the process: `--ns <proc>/<pid> <start time> <mnt:[inode]>`. */
export function namespaceArgs(proc: string, chosen: ChosenProcess): string[] {
  return ['--ns', `${proc}/${chosen.pid}`, String(chosen.startTime), chosen.mntNs];
}

/** Why the helper did not enter the namespace of a result line, if it refused to. */
export function notEnteredOf(result: HelperResult | undefined): NotEntered | undefined {
  return result?.step === 'identity' && typeof result.notEntered === 'string'
    ? (result.notEntered as NotEntered)
    : undefined;
}

/** The result says the process had exited before it could be checked (nothing to report about it). */
export function exitedBeforeEntry(result: HelperResult | undefined): boolean {
  return (
    result !== undefined &&
    ['open(pid)', 'open(stat)', 'read(stat)', 'open(ns/mnt)', 'open(root)'].includes(
      String(result.step),
    ) &&
    ['ENOENT', 'ESRCH'].includes(String(result.errno))
  );
}

/** Whether `pid` is still in `mntNs`, read after something else was read through it (a pid read "then proved"). */
export function stillIn(proc: string, chosen: ChosenProcess): boolean {
  return (
    readLink(`${proc}/${chosen.pid}/ns/mnt`) === chosen.mntNs &&
    readStartTime(proc, chosen.pid) === chosen.startTime
  );
}
