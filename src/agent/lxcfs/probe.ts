// Is lxcfs answering? A read of one of its files through FUSE, with a timeout: a read from a hung lxcfs
// blocks (uninterruptibly for a thread, killably for a process), and the agent must never wait on it.
// Both ways read in a native helper process, never in the agent: closing an lxcfs file sends lxcfs a
// FLUSH, and a child the agent forks closes its copy of every file at exec; holding one, the agent
// would hang in every spawn (libuv waits for the exec) while lxcfs hangs.
// - probeLxcfs: `lxcfs-remount read` opens and reads the file and exits; a timeout abandons it. For
//   one-off checks (`check node`).
// - HeldFileProbe: the agent's periodic probe. One `lxcfs-remount probe` per running lxcfs keeps the
//   file open and answers each request with one read at offset 0, which lxcfs answers afresh (it serves
//   later offsets from what that read made): one FUSE request and two pipe messages per probe, no
//   process started. Against a hung lxcfs that read blocks until lxcfs answers or dies (the supervisor
//   kills it after the hang grace), so at most one is ever outstanding, and a probe while it is counts
//   as unanswered.
import { join } from 'node:path';
import { HelperProcess } from '../host/helper-process.js';
import { runHelper, type HelperResult } from '../host/native.js';

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

/** The agent's probes of one running lxcfs (see above); close() once that lxcfs is gone. */
export class HeldFileProbe {
  private prober: HelperProcess<HelperResult> | undefined;
  /** Settles the request the helper has not answered yet, with why it failed ('' when it did not). */
  private answer: ((error: string) => void) | undefined;
  private closed = false;

  constructor(
    private readonly helper: string,
    private readonly fuseMount: string,
  ) {}

  async probe(timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    if (this.closed) return { ok: false, ms: 0, error: 'closed' };
    if (this.answer) return { ok: false, ms: 0, error: 'the last read has not returned' };
    const prober = (this.prober ??= this.startProber());
    let timer: NodeJS.Timeout | undefined;
    const error = await new Promise<string | undefined>((resolve) => {
      this.answer = resolve;
      timer = setTimeout(() => resolve(undefined), timeoutMs);
      prober.write('\n');
    });
    clearTimeout(timer);
    if (error === undefined)
      return { ok: false, ms: ms(), error: `no answer within ${timeoutMs} ms` };
    return error === '' ? { ok: true, ms: ms() } : { ok: false, ms: ms(), error };
  }

  /** Ends the helper; it exits once its read, if one hangs, returns. */
  close(): void {
    this.closed = true;
    void this.prober?.end(1000);
  }

  private startProber(): HelperProcess<HelperResult> {
    const prober: HelperProcess<HelperResult> = new HelperProcess(
      this.helper,
      ['probe', join(this.fuseMount, PROBED_FILE)],
      {
        line: (result) =>
          this.settle(
            result.ok && Number(result.bytes) > 0
              ? ''
              : result.ok
                ? 'read: no data'
                : `${result.step}: ${result.errno}`,
          ),
        gone: (how) => {
          if (this.prober === prober) this.prober = undefined;
          this.settle(`helper exit ${String(how.code ?? how.signal ?? how.err)}`);
        },
      },
    );
    return prober;
  }

  /** The helper answered (late answers end the wait of a probe that already timed out). */
  private settle(error: string): void {
    const answer = this.answer;
    this.answer = undefined;
    answer?.(error);
  }
}
