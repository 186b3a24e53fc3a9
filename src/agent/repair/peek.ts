// Can containers read their lxcfs files? mountinfo tells what is mounted, and classification decides
// from it; only a read tells whether a file answers. So a sample of containers (or every one: `check
// node --all`) gets one byte of each of our files read inside it, through the native helper with a
// timeout per run of a batch of containers (a hung lxcfs blocks the read). A failure here that
// classification called live is a state it missed, and shows as a problem, never as health. Read-only:
// used by `check node` and, for a metric, by the agent (reads.ts).
import {
  exitedBeforeEntry,
  forbiddenNamespaces,
  namespaceArgs,
  notEnteredOf,
  refuseBeforeAsking,
  type NotEntered,
} from '../host/chosen-process.js';
import { PEEK_BATCH_SIZE, PEEK_PARALLELISM } from '../../config/defaults.js';
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
  /** The containers asked for (read, or not entered). */
  read: NamespaceView[];
  /** Every container with files of ours was asked for, not a sample. */
  all: boolean;
}

export interface PeekOptions {
  /** How many containers to read, chosen at random (Infinity: every one). */
  sampleSize: number;
  /** For each helper run. */
  timeoutMs: number;
  /** Containers per helper run, and runs at once (PEEK_BATCH_SIZE, PEEK_PARALLELISM). */
  batchSize?: number;
  parallelism?: number;
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

/** One helper run over a batch of containers: what did not read, and how many files were read. */
async function peekBatch(
  { helper, proc, timeoutMs }: { helper: string; proc: string; timeoutMs: number },
  batch: readonly NamespaceView[],
  notEntered: NotEnteredRead[],
): Promise<{ unreadable: UnreadableFile[]; files: number }> {
  const args = ['peek', ...batch.flatMap((v) => [...namespaceArgs(proc, v.ns), ...peekTargets(v)])];
  const run = await runHelper(helper, args, timeoutMs);
  const results = new Map(run.results.map((r) => [`${String(r.ns)}\0${String(r.target)}`, r]));
  const unreadable: UnreadableFile[] = [];
  let files = 0;
  for (const view of batch) {
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
          ? `no answer within ${timeoutMs} ms`
          : `helper exit ${run.exitCode}`;
      unreadable.push({ view, target, error });
    }
  }
  return { unreadable, files };
}

export async function peekContainers(
  helper: string,
  proc: string,
  views: readonly NamespaceView[],
  options: PeekOptions,
): Promise<PeekReport> {
  const forbidden = forbiddenNamespaces(proc);
  const notEntered: NotEnteredRead[] = [];
  const readable = views.filter((v) => peekTargets(v).length > 0);
  const all = options.sampleSize === Infinity;
  const chosen = (all ? readable : sample(readable, options.sampleSize)).filter((view) => {
    const refusal = refuseBeforeAsking(forbidden, proc, view.ns.mntNs);
    if (refusal) notEntered.push({ view, ...refusal });
    return refusal === undefined;
  });
  const batches: NamespaceView[][] = [];
  const { batchSize = PEEK_BATCH_SIZE, parallelism = PEEK_PARALLELISM } = options;
  for (let i = 0; i < chosen.length; i += batchSize) batches.push(chosen.slice(i, i + batchSize));
  const unreadable: UnreadableFile[] = [];
  let files = 0;
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      const done = await peekBatch(
        { helper, proc, timeoutMs: options.timeoutMs },
        batch,
        notEntered,
      );
      unreadable.push(...done.unreadable);
      files += done.files;
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, batches.length) }, worker));
  return { containers: chosen.length, files, unreadable, notEntered, read: chosen, all };
}
