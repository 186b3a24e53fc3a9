// Is lxcfs answering? Reads one of its files through FUSE in a separate process with a timeout: a read
// from a hung lxcfs blocks (uninterruptibly for a thread, killably for a process), and the agent's own
// threads must never be the ones stuck.
import { join } from 'node:path';
import { runHelper } from '../host/native.js';

/** What pods read most; lxcfs answers it from the memory cgroup. */
const PROBED_FILE = 'proc/meminfo';

export interface ProbeResult {
  ok: boolean;
  ms: number;
  /** Why not: a timeout, or the read's errno. */
  error?: string;
}

export async function probeLxcfs(
  helper: string,
  fuseMount: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  const started = performance.now();
  const run = await runHelper(helper, ['read', join(fuseMount, PROBED_FILE)], timeoutMs);
  const ms = Math.round(performance.now() - started);
  const result = run.results[0];
  if (run.timedOut) return { ok: false, ms, error: `no answer within ${timeoutMs} ms` };
  if (result?.ok && Number(result.bytes) > 0) return { ok: true, ms };
  return {
    ok: false,
    ms,
    error: result ? `${result.step}: ${result.errno}` : `helper exit ${run.exitCode}`,
  };
}
