// Puts live lxcfs files back into running containers with the native helper, a few helper runs at a
// time, each covering a batch of namespaces (one exec per namespace would cost more than the remount).
// What the helper reports is not trusted on its own: every target is verified in mountinfo afterwards.
// The helper enters only the process chosen for the namespace, in that namespace, never the host's
// (host/chosen-process.ts); a namespace that is the host's or the agent's own is not even asked for.
import { readFileSync } from 'node:fs';
import type { TargetStatus } from './classify.js';
import {
  forbiddenNamespaces,
  namespaceArgs,
  notEnteredOf,
  refuseBeforeAsking,
  stillIn,
  type ChosenProcess,
  type NotEntered,
} from '../host/chosen-process.js';
import { runHelper, type HelperResult } from '../host/native.js';
import { parseMountinfo, topMountAt } from '../host/mountinfo.js';

/** A namespace's broken targets, and the process chosen for it, whose root the targets are relative to. */
export interface RemountPlan extends ChosenProcess {
  /** Stale or missing targets. */
  targets: TargetStatus[];
}

export interface RemountOptions {
  helper: string;
  proc: string;
  fuseMount: string;
  /** dev of the running lxcfs: a verified target is served by it. */
  liveDev: string;
  parallelism: number;
  batchSize: number;
  timeoutMs: number;
}

export interface RemountOutcome {
  mntNs: string;
  pid: number;
  target: string;
  ok: boolean;
  /** beneath (atomic swap), detach-attach (older kernels) or attach (a missing target). */
  how?: string;
  /** Set when the namespace was not entered because it is not the one chosen, or is the host's; `error` says why. */
  notEntered?: NotEntered;
  error?: string;
}

function helperArgs(batch: readonly RemountPlan[], options: RemountOptions): string[] {
  const args = ['swap'];
  for (const plan of batch) {
    args.push(...namespaceArgs(options.proc, plan));
    for (const t of plan.targets) {
      args.push(
        `${options.fuseMount}${t.lxcfsPath}`,
        t.target,
        t.readOnly ? 'ro' : 'rw',
        t.state === 'stale' ? 'replace' : 'attach',
      );
    }
  }
  return args;
}

/**
 * Whether mountinfo now shows the live lxcfs file on every target; undefined when the namespace is gone.
 * Read by pid, then proved: the process is checked to be still the one chosen, in its namespace.
 */
function verify(plan: RemountPlan, options: RemountOptions): Map<string, boolean> | undefined {
  let text: string;
  try {
    text = readFileSync(`${options.proc}/${plan.pid}/mountinfo`, 'utf8');
  } catch {
    return undefined;
  }
  if (!stillIn(options.proc, plan)) return undefined;
  const mounts = parseMountinfo(text);
  return new Map(
    plan.targets.map((t) => {
      const top = topMountAt(mounts, t.target);
      return [t.target, top?.dev === options.liveDev && top.root === t.lxcfsPath];
    }),
  );
}

async function remountBatch(
  batch: readonly RemountPlan[],
  options: RemountOptions,
): Promise<RemountOutcome[]> {
  const run = await runHelper(options.helper, helperArgs(batch, options), options.timeoutMs);
  const reported = new Map<string, HelperResult>(
    run.results.map((r) => [`${String(r.ns)}\0${String(r.target)}`, r]),
  );
  return batch.flatMap((plan) => {
    const verified = verify(plan, options);
    return plan.targets.map((t): RemountOutcome => {
      const base = { mntNs: plan.mntNs, pid: plan.pid, target: t.target };
      const result = reported.get(`${options.proc}/${plan.pid}\0${t.target}`);
      const notEntered = notEnteredOf(result);
      if (notEntered) return { ...base, ok: false, notEntered, error: String(result?.error) };
      if (verified === undefined) return { ...base, ok: false, error: 'the container exited' };
      if (verified.get(t.target))
        return { ...base, ok: true, how: String(result?.how ?? 'unknown') };
      if (result && !result.ok)
        return { ...base, ok: false, error: `${result.step}: ${result.errno} (${result.error})` };
      if (!result && run.timedOut)
        return { ...base, ok: false, error: `helper timed out after ${options.timeoutMs} ms` };
      return {
        ...base,
        ok: false,
        error: 'mountinfo does not show the live lxcfs file after the remount',
      };
    });
  });
}

export async function remount(
  allPlans: readonly RemountPlan[],
  options: RemountOptions,
): Promise<RemountOutcome[]> {
  const forbidden = forbiddenNamespaces(options.proc);
  const outcomes: RemountOutcome[] = [];
  const plans = allPlans.filter((plan) => {
    const refusal = refuseBeforeAsking(forbidden, options.proc, plan.mntNs);
    if (refusal)
      outcomes.push(
        ...plan.targets.map((t) => ({
          mntNs: plan.mntNs,
          pid: plan.pid,
          target: t.target,
          ok: false,
          ...refusal,
        })),
      );
    return refusal === undefined;
  });
  // Spread over the helpers that may run at once, but no more namespaces per run than batchSize.
  const size = Math.max(
    1,
    Math.min(options.batchSize, Math.ceil(plans.length / options.parallelism)),
  );
  const batches: RemountPlan[][] = [];
  for (let i = 0; i < plans.length; i += size) batches.push(plans.slice(i, i + size));
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift())
      outcomes.push(...(await remountBatch(batch, options)));
  };
  await Promise.all(Array.from({ length: Math.min(options.parallelism, batches.length) }, worker));
  return outcomes;
}
