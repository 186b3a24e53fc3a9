// Runs the native helper (native/lxcfs-remount.c) and reads its JSON lines. Every run has a timeout:
// the helper may block on a hung lxcfs, and the agent must not wait on it. The helper gets its own
// process group so a timeout kills the children it forked for each namespace too.
import { spawn } from 'node:child_process';
import { LxcfsWebhookError } from '../../errors.js';

/** One result line of the helper: `ok`, or the failed `step` with `errno` (ENOENT) and `error` text. */
export interface HelperResult {
  ok: boolean;
  step?: string;
  errno?: string;
  error?: string;
  [field: string]: unknown;
}

export interface HelperRun {
  results: HelperResult[];
  /** Exit code; null when it was killed. */
  exitCode: number | null;
  timedOut: boolean;
  stderr: string;
}

/** A line cut short by a kill is dropped: the target it was about counts as not done. */
function parseResultLines(stdout: string): HelperResult[] {
  const results: HelperResult[] = [];
  for (const line of stdout.split('\n')) {
    try {
      if (line !== '') results.push(JSON.parse(line) as HelperResult);
    } catch {
      // incomplete line
    }
  }
  return results;
}

export function runHelper(
  helper: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<HelperRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(helper, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      // Do not wait for the exit: a read that lxcfs took before it hung sleeps uninterruptibly, even
      // through SIGKILL, until lxcfs answers or dies, and the caller is the one that must kill lxcfs.
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      resolve({ results: parseResultLines(stdout), exitCode: null, timedOut, stderr });
    }, timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new LxcfsWebhookError(
          'E_NATIVE',
          err.code === 'ENOENT' || err.code === 'EACCES'
            ? `native helper ${helper} cannot be run (${err.code}): build it with "npm run build" (make -C native) or give the agent its path`
            : `native helper ${helper} failed to start: ${err.message}`,
          { cause: err, setting: 'helper' },
        ),
      );
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ results: parseResultLines(stdout), exitCode, timedOut, stderr });
    });
  });
}

/** Runs a helper command that prints one result line, and throws E_NATIVE when it did not succeed. */
export async function runHelperStep(
  helper: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<HelperResult> {
  const run = await runHelper(helper, args, timeoutMs);
  const result = run.results[0];
  if (result?.ok) return result;
  const what = args.join(' ');
  if (run.timedOut)
    throw new LxcfsWebhookError(
      'E_NATIVE',
      `"${what}" did not finish within ${timeoutMs} ms (a hung FUSE mount?)`,
    );
  if (!result)
    throw new LxcfsWebhookError(
      'E_NATIVE',
      `"${what}" printed no result (exit ${run.exitCode}): ${run.stderr.trim()}`,
    );
  throw new LxcfsWebhookError(
    'E_NATIVE',
    `"${what}" failed at ${result.step}: ${result.errno} (${result.error})`,
  );
}

export interface MountApiSupport {
  /** open_tree and move_mount (Linux 5.2) work. */
  supported: boolean;
  /** mount_setattr (5.12); without it the helper sets private/ro with the classic API. */
  mountSetattr: boolean;
  /** Why not, e.g. ENOSYS (kernel too old) or EPERM (not privileged). */
  errno?: string;
}

export async function checkMountApi(helper: string, timeoutMs: number): Promise<MountApiSupport> {
  const run = await runHelper(helper, ['check'], timeoutMs);
  const result = run.results[0];
  if (result?.ok) return { supported: true, mountSetattr: result.mountSetattr === true };
  return { supported: false, mountSetattr: false, errno: result?.errno ?? `exit ${run.exitCode}` };
}
