// A long-running native helper (`watch`, `cgroups`, `probe`): its stdin takes commands, its stdout gives
// one JSON object per line. A line that is not JSON cannot come from the helper we know: the process
// is killed, and its end reported like any other.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/**
 * How long to wait before starting a helper that ended after running `ranForMs`: the first delay after
 * a helper that ran a long time, else twice the last delay, up to the cap.
 */
export function restartDelayMs(lastDelayMs: number, ranForMs: number, backoff: Backoff): number {
  if (ranForMs >= backoff.maxMs) return backoff.firstMs;
  return Math.min(backoff.maxMs, Math.max(backoff.firstMs, lastDelayMs * 2));
}

export interface HelperProcessEvents<T> {
  line(value: T): void;
  /** It ended; `how` says how (exit code, signal, the end of its stderr, or a spawn error). */
  gone(how: Record<string, unknown>): void;
}

export class HelperProcess<T> {
  private readonly child: ChildProcess;

  constructor(helper: string, args: readonly string[], events: HelperProcessEvents<T>) {
    const child = spawn(helper, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let pending = '';
    let stderr = '';
    let ended = false;
    const end = (how: Record<string, unknown>) => {
      if (ended) return;
      ended = true;
      events.gone(how);
    };
    child.stdin!.on('error', () => undefined); // EPIPE when it died: its exit is reported below
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line === '' || ended) continue;
        let value: T;
        try {
          value = JSON.parse(line) as T;
        } catch {
          child.kill('SIGKILL');
          return;
        }
        events.line(value);
      }
    });
    child
      .stderr!.setEncoding('utf8')
      .on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-1000)));
    child.once('error', (err) => end({ err }));
    child.once('close', (code, signal) => end({ code, signal, stderr: stderr.trim() }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Ends its stdin (it exits then), and kills it if it has not exited after `graceMs`. */
  async end(graceMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('close', resolve));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
