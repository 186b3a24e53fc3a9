// The mount watcher against the real kernel: the native helper's `watch` protocol, then the class the
// agent uses. Namespaces are plain `unshare --mount` processes: all a mount table needs.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStartTime } from '../../../src/agent/host/chosen-process.js';
import { MountWatch } from '../../../src/agent/host/mount-watch.js';
import { createLogger } from '../../../src/log.js';
import { helperPath } from '../../helpers/node.js';
import { waitUntil } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-watch-'));
writeFileSync(join(dir, 'source'), 'x');
writeFileSync(join(dir, 'target'), '');
const processes: ChildProcess[] = [];
after(() => {
  for (const p of processes) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process in a mount namespace of its own; resolves once it is in it. */
async function namespace(): Promise<{
  pid: number;
  mntNs: string;
  startTime: number;
  process: ChildProcess;
}> {
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '60'], {
    stdio: 'ignore',
  });
  processes.push(child);
  const own = readlinkSync('/proc/self/ns/mnt');
  let mntNs = own;
  await waitUntil(
    'the process is in its own mount namespace',
    () => {
      try {
        mntNs = readlinkSync(`/proc/${child.pid}/ns/mnt`);
      } catch {
        // not started yet
      }
      return mntNs !== own;
    },
    { timeoutMs: 5000 },
  );
  return { pid: child.pid!, mntNs, startTime: readStartTime('/proc', child.pid!)!, process: child };
}

function bindInside(pid: number): void {
  execFileSync('nsenter', [
    '-t',
    String(pid),
    '-m',
    'mount',
    '--bind',
    join(dir, 'source'),
    join(dir, 'target'),
  ]);
}

async function exit(p: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGKILL');
  await exited;
}

/** The watcher's descriptors, as their link texts. */
function descriptors(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

/** `lxcfs-remount watch` with its JSON lines collected. */
function rawWatcher() {
  const child = spawn(helperPath, ['watch', '/proc'], { stdio: ['pipe', 'pipe', 'inherit'] });
  processes.push(child);
  const lines: Record<string, unknown>[] = [];
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop()!;
    for (const line of parts) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const next = async (
    match: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> => {
    await waitUntil('a matching watcher line', () => lines.some(match), { timeoutMs: 5000 });
    return lines.find(match)!;
  };
  return { child, lines, next, send: (line: string) => child.stdin!.write(`${line}\n`) };
}

test('watch: confirms an add with the namespace, reports a bind mount inside it, and its exit', async () => {
  const ns = await namespace();
  const w = rawWatcher();
  w.send(`add ${ns.mntNs} ${ns.pid} ${ns.startTime}`);
  assert.deepEqual(await w.next((l) => l.event === 'added'), {
    event: 'added',
    key: ns.mntNs,
    pid: ns.pid,
    ok: true,
    mntNs: ns.mntNs,
  });
  const held = descriptors(w.child.pid!);
  assert.ok(
    held.includes(`/proc/${ns.pid}/mountinfo`) && held.includes('anon_inode:[pidfd]'),
    `holds mountinfo and a pidfd: ${held.join(', ')}`,
  );
  await sleep(50);
  assert.equal(w.lines.filter((l) => l.event === 'changed').length, 0, 'nothing changed yet');

  bindInside(ns.pid);
  assert.deepEqual(await w.next((l) => l.event === 'changed'), {
    event: 'changed',
    key: ns.mntNs,
    pid: ns.pid,
  });

  await exit(ns.process);
  assert.deepEqual(await w.next((l) => l.event === 'gone'), {
    event: 'gone',
    key: ns.mntNs,
    pid: ns.pid,
  });
  // The namespace must not outlive its processes because of us: both descriptors are closed.
  const left = descriptors(w.child.pid!);
  assert.ok(
    !left.some((l) => l.includes('mountinfo') || l.includes('pidfd')),
    `descriptors left: ${left.join(', ')}`,
  );

  w.child.stdin!.end();
  assert.equal(
    await new Promise((resolve) => w.child.once('exit', resolve)),
    0,
    'exits when its stdin ends',
  );
});

test('watch: an add for a process that is gone fails with the step and errno; remove drops a watch', async () => {
  const gone = await namespace();
  await exit(gone.process);
  const live = await namespace();
  const w = rawWatcher();
  w.send(`add ${gone.mntNs} ${gone.pid} ${gone.startTime}`);
  const failed = await w.next((l) => l.event === 'added');
  assert.deepEqual([failed.ok, failed.step, failed.errno], [false, 'open(pid)', 'ENOENT']);

  w.send(`add ${live.mntNs} ${live.pid} ${live.startTime}`);
  await w.next((l) => l.event === 'added' && l.ok === true);
  w.send(`remove ${live.mntNs}`);
  await waitUntil(
    'the watch is dropped',
    () => !descriptors(w.child.pid!).some((l) => l.includes('mountinfo')),
    { timeoutMs: 5000 },
  );
  bindInside(live.pid);
  await sleep(100);
  assert.equal(
    w.lines.filter((l) => l.event === 'changed').length,
    0,
    'no news of a removed watch',
  );
  w.child.stdin!.end();
});

test("watch: another process at the pid, another namespace or the host's is refused and not watched", async () => {
  const ns = await namespace();
  const w = rawWatcher();
  const self = readStartTime('/proc', process.pid)!;
  const own = readlinkSync('/proc/self/ns/mnt');
  w.send(`add ${ns.mntNs} ${ns.pid} ${ns.startTime + 1}`);
  w.send(`add mnt:[4026530000] ${ns.pid} ${ns.startTime}`);
  // Watching is read-only, so the test's own (the host's) namespace is safe to name here.
  w.send(`add ${own} ${process.pid} ${self}`);
  await waitUntil('three answers', () => w.lines.filter((l) => l.event === 'added').length === 3, {
    timeoutMs: 5000,
  });
  const refusals = w.lines
    .filter((l) => l.event === 'added')
    .map((l) => [l.key, l.ok, l.step, l.notEntered]);
  assert.deepEqual(refusals, [
    [ns.mntNs, false, 'identity', 'other-process'],
    ['mnt:[4026530000]', false, 'identity', 'other-namespace'],
    [own, false, 'identity', 'host-namespace'],
  ]);
  assert.ok(
    !descriptors(w.child.pid!).some((l) => l.includes('mountinfo') || l.includes('pidfd')),
    'nothing is held',
  );
  w.child.stdin!.end();
});

test('MountWatch: confirmed watches start dirty, go quiet after a read, turn dirty on a change, and all go when the watcher dies; each is told to the listener', async () => {
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('test', 'debug', {
    write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  const heard = { changed: 0, coverageChanged: 0 };
  const watch = new MountWatch(
    { helper: helperPath, proc: '/proc', backoff: { firstMs: 100, maxMs: 1000 } },
    log,
    { changed: () => heard.changed++, coverageChanged: () => heard.coverageChanged++ },
  );
  after(() => watch.stop());
  const a = await namespace();
  const b = await namespace();
  assert.equal(watch.complete, false, 'not running yet');
  watch.follow([a, b]);
  assert.equal(watch.complete, true, 'every namespace followed is being added');
  await waitUntil('both watches confirmed', () => watch.watched === 2, { timeoutMs: 5000 });
  // Each confirmation asks for a sweep: the table may have changed before the watch began. (At least:
  // on a shared machine a namespace's table may change for reasons of its own, and that is told too.)
  assert.ok(heard.changed >= 2, `confirmations told: ${heard.changed}`);
  // The read the survey did before the watch began may have missed a change: one more read is due.
  assert.deepEqual(watch.status(a.mntNs), {
    pid: a.pid,
    startTime: a.startTime,
    confirmed: true,
    dirty: true,
  });
  watch.reading(a.mntNs);
  watch.reading(b.mntNs);

  let told = heard.changed;
  bindInside(a.pid);
  await waitUntil('a is dirty', () => watch.status(a.mntNs)?.dirty === true, { timeoutMs: 5000 });
  assert.equal(watch.status(b.mntNs)?.dirty, false, 'b did not change');
  assert.ok(heard.changed > told, 'the change is told');

  watch.follow([b]);
  assert.equal(watch.status(a.mntNs), undefined, 'a namespace no longer listed is dropped');

  const watcher = watch.pid!;
  told = heard.changed;
  process.kill(watcher, 'SIGKILL');
  await waitUntil('the watcher is noticed gone', () => watch.pid === undefined, {
    timeoutMs: 5000,
  });
  assert.equal(watch.status(b.mntNs), undefined, 'nothing is watched while it is down');
  assert.equal(watch.complete, false);
  assert.ok(heard.changed > told, 'its loss is told');
  assert.equal(
    logs.filter(
      (l) =>
        l.msg ===
        'mount notifications stopped: every sweep reads every mount table until the watcher is back',
    ).length,
    1,
  );

  watch.follow([b]);
  assert.equal(watch.pid, undefined, 'not restarted before the backoff');
  await sleep(150);
  watch.follow([b]);
  assert.ok(watch.pid !== undefined && watch.pid !== watcher, 'restarted after the backoff');
  await waitUntil('b watched again', () => watch.status(b.mntNs)?.confirmed === true, {
    timeoutMs: 5000,
  });
  assert.ok(logs.some((l) => l.msg === 'mount notifications back'));

  // A process that is not the one chosen any more: refused, logged, not watched.
  const c = await namespace();
  watch.follow([b, { ...c, startTime: c.startTime + 1 }]);
  await waitUntil(
    'the refusal is logged',
    () => logs.some((l) => l.msg === 'namespace not entered: mount watch refused'),
    { timeoutMs: 5000 },
  );
  const refused = logs.find((l) => l.msg === 'namespace not entered: mount watch refused')!;
  assert.deepEqual(
    [refused.mntNs, refused.pid, refused.notEntered],
    [c.mntNs, c.pid, 'other-process'],
  );
  assert.equal(watch.status(c.mntNs), undefined);
  // One namespace not watched: incomplete, and told, so the agent polls until a sweep chooses anew.
  assert.equal(watch.complete, false);
  assert.equal(heard.coverageChanged, 1);
  watch.follow([b, c]);
  assert.equal(watch.complete, true);
  await waitUntil('c watched', () => watch.status(c.mntNs)?.confirmed === true, {
    timeoutMs: 5000,
  });
});
