// Puts live lxcfs files back into running containers with the native helper, a few helper runs at a
// time, each covering a batch of namespaces (one exec per namespace would cost more than the remount).
// What the helper reports is not trusted on its own: every target is verified in mountinfo afterwards.
import { readFileSync } from 'node:fs';
import type { TargetStatus } from './classify.js';
import { runHelper, type HelperResult } from '../host/native.js';
import { parseMountinfo, topMountAt } from '../host/mountinfo.js';

export interface RemountPlan {
  mntNs: string;
  /** A process of the namespace, whose root the targets are relative to. */
  pid: number;
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
  error?: string;
}

function helperArgs(batch: readonly RemountPlan[], options: RemountOptions): string[] {
  const args = ['swap'];
  for (const plan of batch) {
    args.push('--ns', `${options.proc}/${plan.pid}`);
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

/** Whether mountinfo now shows the live lxcfs file on every target; undefined when the namespace is gone. */
function verify(plan: RemountPlan, options: RemountOptions): Map<string, boolean> | undefined {
  let text: string;
  try {
    text = readFileSync(`${options.proc}/${plan.pid}/mountinfo`, 'utf8');
  } catch {
    return undefined;
  }
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
  plans: readonly RemountPlan[],
  options: RemountOptions,
): Promise<RemountOutcome[]> {
  // Spread over the helpers that may run at once, but no more namespaces per run than batchSize.
  const size = Math.max(
    1,
    Math.min(options.batchSize, Math.ceil(plans.length / options.parallelism)),
  );
  const batches: RemountPlan[][] = [];
  for (let i = 0; i < plans.length; i += size) batches.push(plans.slice(i, i + size));
  const outcomes: RemountOutcome[] = [];
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift())
      outcomes.push(...(await remountBatch(batch, options)));
  };
  await Promise.all(Array.from({ length: Math.min(options.parallelism, batches.length) }, worker));
  return outcomes;
}
