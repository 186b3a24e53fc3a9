// One agent per anchor. Two agents on one anchor (two installs, or the systemd unit beside the
// DaemonSet) kill each other's lxcfs and unmount each other's binds; so before touching anything the
// agent takes an exclusive lock on the anchor directory, held by the native helper's `lock` (Node.js has
// no flock), and a second agent refuses to start, naming the first, without touching its mounts.
//
// The lock is on the directory itself: on the anchor tmpfs, whose root cannot be deleted, needs no space
// and lives as long as the anchor; before that tmpfs exists, on the directory it is mounted on, and then,
// once the agent has mounted it (`again`), on the tmpfs too. Two agents starting at once therefore meet
// on the one or the other, and exactly one wins.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { LxcfsWebhookError } from '../../errors.js';
import type { HelperResult } from '../host/native.js';

/** The command line of a process, shortened for an error message; undefined when it cannot be read. */
function describeProcess(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    const text = argv.join(' ');
    return text.length > 160 ? `${text.slice(0, 157)}...` : text;
  } catch {
    return undefined;
  }
}

/** The error for a lock another process holds, naming the agent that holds it when it can be found. */
function heldError(root: string, result: HelperResult): LxcfsWebhookError {
  const agentPid = typeof result.holderParent === 'number' ? result.holderParent : undefined;
  const command = agentPid === undefined ? undefined : describeProcess(agentPid);
  const who =
    agentPid === undefined
      ? 'another lxcfs-webhook agent'
      : `another lxcfs-webhook agent (pid ${agentPid}${command ? `: ${command}` : ''})`;
  return new LxcfsWebhookError(
    'E_AGENT',
    `${who} holds the anchor ${root}: run one agent per node and anchor (is a second DaemonSet installed, or the ` +
      'systemd unit beside the DaemonSet?), or give this one another anchor; nothing was changed',
    { setting: 'root' },
  );
}

export class AnchorLock {
  private released = false;
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private closed = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly root: string,
  ) {
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (pending + chunk).split('\n');
      pending = parts.pop()!;
      for (const line of parts) this.deliver(line);
    });
    child.stdin!.on('error', () => undefined); // EPIPE once it exited: its exit is what counts
    child.once('close', () => {
      this.closed = true;
      this.waiting?.(undefined);
    });
  }

  /**
   * Locks the anchor directory `root` (which must exist); throws E_AGENT naming the other agent when
   * it is held. `onLost` is called if the lock goes away while held (its helper was killed).
   */
  static async take(helper: string, root: string, onLost: () => void): Promise<AnchorLock> {
    const child = spawn(helper, ['lock', root], { stdio: ['pipe', 'pipe', 'ignore'] });
    const lock = new AnchorLock(child, root);
    await lock.result();
    child.once('close', () => {
      if (!lock.released) onLost();
    });
    return lock;
  }

  /** Locks what is at the anchor now too (the tmpfs just mounted there); throws E_AGENT when another agent holds that. */
  async again(): Promise<void> {
    this.child.stdin!.write('again\n');
    await this.result();
  }

  /** Lets the lock go (last, once lxcfs is stopped and its mounts are cleared). */
  async release(): Promise<void> {
    this.released = true;
    if (this.closed) return;
    const exited = new Promise((resolve) => this.child.once('close', resolve));
    this.child.stdin!.end();
    await exited;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private deliver(line: string): void {
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting(line);
    } else {
      this.lines.push(line);
    }
  }

  private async result(): Promise<void> {
    const line =
      this.lines.shift() ??
      (this.closed
        ? undefined
        : await new Promise<string | undefined>((resolve) => (this.waiting = resolve)));
    let result: HelperResult | undefined;
    try {
      result = line === undefined ? undefined : (JSON.parse(line) as HelperResult);
    } catch {
      result = undefined;
    }
    if (result?.ok) return;
    this.released = true;
    this.child.kill('SIGKILL');
    if (result?.step === 'flock') throw heldError(this.root, result);
    const why = result
      ? `${result.step}: ${result.errno} (${result.error})`
      : 'the helper printed no result';
    throw new LxcfsWebhookError('E_AGENT', `cannot lock the anchor ${this.root}: ${why}`, {
      setting: 'root',
    });
  }
}
