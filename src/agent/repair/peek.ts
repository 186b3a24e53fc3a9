// Can containers read their lxcfs files? mountinfo tells what is mounted, and classification decides
// from it; only a read tells whether a file answers. So a sample of containers gets one byte of each
// of our files read inside it, through the native helper with a timeout (a hung lxcfs blocks the read).
// A failure here that classification called live is a state it missed, and shows as a problem, never
// as health. Read-only: used by `check node` and, for a metric, by the agent (reads.ts).
import {
  exitedBeforeEntry,
  forbiddenNamespaces,
  namespaceArgs,
  notEnteredOf,
  refuseBeforeAsking,
  type NotEntered,
} from '../host/chosen-process.js';
import { runHelper } from '../host/native.js';
import type { NamespaceView } from './survey.js';

export interface UnreadableFile {
  view: NamespaceView;
  target: string;
  /** errno of the failed step (`open: ENOTCONN`), or why there is no answer. */
  error: string;
}

/** A container not read because the process chosen for it was not there, or the namespace is the host's. */
export interface NotEnteredRead {
  view: NamespaceView;
  notEntered: NotEntered;
  error: string;
}

export interface PeekReport {
  containers: number;
  files: number;
  unreadable: UnreadableFile[];
  notEntered: NotEnteredRead[];
}

/** Targets worth reading: ours in the kernel's view, less those already known to be stale. */
export function peekTargets(view: NamespaceView): string[] {
  const stale = new Set(view.statuses.filter((s) => s.state === 'stale').map((s) => s.target));
  return view.ourTargets.filter((target) => !stale.has(target));
}

/** Up to `size` items, chosen at random so repeated checks cover every container in time. */
export function sample<T>(items: readonly T[], size: number): T[] {
  const pool = [...items];
  for (let i = 0; i < Math.min(size, pool.length); i++) {
    const j = i + Math.floor(Math.random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, size);
}

export async function peekContainers(
  helper: string,
  proc: string,
  views: readonly NamespaceView[],
  options: { sampleSize: number; timeoutMs: number },
): Promise<PeekReport> {
  const forbidden = forbiddenNamespaces(proc);
  const notEntered: NotEnteredRead[] = [];
  const chosen = sample(
    views.filter((v) => peekTargets(v).length > 0),
    options.sampleSize,
  ).filter((view) => {
    const refusal = refuseBeforeAsking(forbidden, proc, view.ns.mntNs);
    if (refusal) notEntered.push({ view, ...refusal });
    return refusal === undefined;
  });
  if (chosen.length === 0) return { containers: 0, files: 0, unreadable: [], notEntered };
  const args = [
    'peek',
    ...chosen.flatMap((v) => [...namespaceArgs(proc, v.ns), ...peekTargets(v)]),
  ];
  const run = await runHelper(helper, args, options.timeoutMs);
  const results = new Map(run.results.map((r) => [`${String(r.ns)}\0${String(r.target)}`, r]));
  const unreadable: UnreadableFile[] = [];
  let files = 0;
  for (const view of chosen) {
    const targets = peekTargets(view);
    const first = results.get(`${proc}/${view.ns.pid}\0${targets[0]}`);
    const refusal = notEnteredOf(first);
    if (refusal) {
      notEntered.push({ view, notEntered: refusal, error: String(first?.error) });
      continue;
    }
    for (const target of targets) {
      files++;
      const result = results.get(`${proc}/${view.ns.pid}\0${target}`);
      if (result?.ok) continue;
      // The container exited between the survey and the read: nothing to report about it.
      if (exitedBeforeEntry(result)) continue;
      const error = result
        ? `${result.step}: ${result.errno}`
        : run.timedOut
          ? `no answer within ${options.timeoutMs} ms`
          : `helper exit ${run.exitCode}`;
      unreadable.push({ view, target, error });
    }
  }
  return { containers: chosen.length, files, unreadable, notEntered };
}
