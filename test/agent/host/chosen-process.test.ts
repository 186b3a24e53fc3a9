// The helper acts on the process the agent chose, in the namespace surveyed, never the host's: each
// refusal of `swap` and `peek` (the `watch` ones are in mount-watch.test.ts), and the agent's own refusal
// before it asks. Every namespace that could be entered by mistake is a stand-in's
// (test/helpers/standin-host.ts) or a scratch one: a failure never mounts on the real node.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  forbiddenNamespaces,
  namespaceArgs,
  type ChosenProcess,
} from '../../../src/agent/host/chosen-process.js';
import { runHelper, type HelperResult } from '../../../src/agent/host/native.js';
import { peekContainers } from '../../../src/agent/repair/peek.js';
import { remount } from '../../../src/agent/repair/remount.js';
import type { NamespaceView } from '../../../src/agent/repair/survey.js';
import { chosenProcess, helperPath, TestNode } from '../../helpers/node.js';
import { StandInHost, type StandInContainer } from '../../helpers/standin-host.js';

const node = new TestNode();
let host: StandInHost;
let container: StandInContainer;
const source = join(node.dir, 'source');
writeFileSync(source, "not the kernel's\n");

before(async () => {
  host = await StandInHost.start(node.dir);
  container = await host.container('target', node.anchor, []);
});
after(async () => {
  await host?.stop();
  await node.cleanup();
});

/** The container's init as the agent inside the stand-in would name it. */
const chosen = (): ChosenProcess => chosenProcess(container.pid, host.proc);

async function swap(
  who: ChosenProcess,
  target = '/proc/meminfo',
  proc = host.proc,
): Promise<HelperResult> {
  const run = await runHelper(
    helperPath,
    ['swap', ...namespaceArgs(proc, who), source, target, 'ro', 'attach'],
    5000,
  );
  assert.equal(run.results.length, 1, run.stderr);
  return run.results[0]!;
}

async function peek(who: ChosenProcess, proc = host.proc): Promise<HelperResult> {
  const run = await runHelper(
    helperPath,
    ['peek', ...namespaceArgs(proc, who), '/proc/meminfo'],
    5000,
  );
  assert.equal(run.results.length, 1, run.stderr);
  return run.results[0]!;
}

function containerMounts(): string {
  return readFileSync(`/proc/${container.hostPid}/mountinfo`, 'utf8');
}

test("the chosen process in its namespace is entered, through the stand-in's procfs (another pid namespace)", async () => {
  const other = await host.container('entered', node.anchor, []);
  const who = chosenProcess(other.pid, host.proc);
  assert.deepEqual(await swap(who), {
    ns: `${host.proc}/${other.pid}`,
    target: '/proc/meminfo',
    ok: true,
    how: 'attach',
  });
  assert.equal(
    execFileSync('nsenter', ['-t', String(other.hostPid), '-m', 'cat', '/proc/meminfo'], {
      encoding: 'utf8',
    }),
    "not the kernel's\n",
  );
  assert.deepEqual(await peek(who), {
    ns: `${host.proc}/${other.pid}`,
    target: '/proc/meminfo',
    ok: true,
    how: 'read',
  });
});

test('another process at the pid (another start time) is refused by swap and peek; nothing is mounted', async () => {
  const before = containerMounts();
  const who = { ...chosen(), startTime: chosen().startTime - 1 };
  for (const result of [await swap(who), await peek(who)]) {
    assert.deepEqual(
      [result.ok, result.step, result.errno, result.notEntered],
      [false, 'identity', 'ESRCH', 'other-process'],
    );
    assert.match(
      String(result.error),
      new RegExp(
        `^pid ${container.pid} is another process now \\(started at tick ${who.startTime + 1}; the one chosen at ${who.startTime}\\): not entered$`,
      ),
    );
  }
  assert.equal(containerMounts(), before);
});

test('the chosen process in another namespace than the one surveyed is refused; nothing is mounted', async () => {
  const before = containerMounts();
  const result = await swap({ ...chosen(), mntNs: 'mnt:[4026530000]' });
  assert.deepEqual(
    [result.ok, result.step, result.errno, result.notEntered],
    [false, 'identity', 'ESTALE', 'other-namespace'],
  );
  assert.match(
    String(result.error),
    /is in mnt:\[\d+\] now, not in mnt:\[4026530000\] as surveyed/,
  );
  assert.equal(containerMounts(), before);
});

test("the host's namespace (PID 1's in the stand-in's /proc) is refused even when named exactly", async () => {
  const before = host.mounts();
  const hostInit = chosenProcess(1, host.proc);
  assert.equal(hostInit.mntNs, host.mntNs);
  for (const result of [await swap(hostInit), await peek(hostInit)]) {
    assert.deepEqual(
      [result.ok, result.step, result.errno, result.notEntered],
      [false, 'identity', 'EPERM', 'host-namespace'],
    );
    assert.equal(
      result.error,
      `pid 1 is in ${host.mntNs}, the host's mount namespace (PID 1's): never entered`,
    );
  }
  assert.deepEqual(host.mounts(), before, "the stand-in host's mount table is untouched");
});

test("the helper's own namespace (the agent's, where lxcfs runs) is refused", () => {
  // In a scratch mount namespace: the helper and a process of that namespace as target.
  const script = [
    'sleep 30 & target=$!',
    `${helperPath} peek --ns /proc/$target "$(cut -d' ' -f22 /proc/$target/stat)" "$(readlink /proc/$target/ns/mnt)" /proc/meminfo`,
    'kill $target',
  ].join('\n');
  const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    encoding: 'utf8',
  });
  const result = JSON.parse(out) as HelperResult;
  assert.deepEqual([result.notEntered, result.errno], ['host-namespace', 'EPERM']);
  assert.match(
    String(result.error),
    /^pid \d+ is in mnt:\[\d+\], the agent's own mount namespace, where lxcfs runs: never entered$/,
  );
});

test("where the host's namespace cannot be read, nothing is entered", async () => {
  const blind = join(node.dir, 'blind-proc');
  mkdirSync(join(blind, String(container.pid)), { recursive: true });
  const result = await swap(chosen(), '/proc/meminfo', blind);
  assert.deepEqual([result.ok, result.notEntered], [false, 'host-unknown']);
  assert.match(String(result.error), /cannot read the mount namespace of .*\/1 nor of kthreadd/);
  assert.deepEqual(forbiddenNamespaces(blind).known, false);
});

test('a process that is gone is an ordinary failure, not a refusal', async () => {
  const gone = await host.container('gone', node.anchor, []);
  const who = chosenProcess(gone.pid, host.proc);
  const exited = new Promise((resolve) => gone.runtime.once('exit', resolve));
  process.kill(gone.hostPid, 'SIGKILL');
  await exited;
  const result = await swap(who);
  assert.deepEqual(
    [result.ok, result.step, result.errno, result.notEntered],
    [false, 'open(pid)', 'ENOENT', undefined],
  );
});

/** A helper that only records that it was run. */
function recordingHelper(): { path: string; ran: () => boolean } {
  const path = join(node.dir, 'recording-helper.sh');
  const marker = join(node.dir, 'recording-helper.ran');
  writeFileSync(path, `#!/bin/sh\ntouch '${marker}'\n`, { mode: 0o755 });
  return { path, ran: () => existsSync(marker) };
}

test("remount: the agent does not even ask for the host's namespace, and reports the helper's refusals", async () => {
  const recorder = recordingHelper();
  const target = {
    target: '/proc/meminfo',
    lxcfsPath: '/proc/meminfo',
    readOnly: false,
    state: 'missing' as const,
  };
  const options = {
    helper: recorder.path,
    proc: host.proc,
    fuseMount: node.fuseMount,
    liveDev: '0:0',
    parallelism: 1,
    batchSize: 1,
    timeoutMs: 5000,
  };
  const [outcome] = await remount([{ ...chosenProcess(1, host.proc), targets: [target] }], options);
  assert.deepEqual(outcome, {
    mntNs: host.mntNs,
    pid: 1,
    target: '/proc/meminfo',
    ok: false,
    notEntered: 'host-namespace',
    error: `${host.mntNs} is the host's mount namespace (PID 1's): never entered`,
  });
  assert.equal(recorder.ran(), false, 'the helper was not run');

  const [replaced] = await remount([{ ...chosen(), startTime: 1, targets: [target] }], {
    ...options,
    helper: helperPath,
  });
  assert.deepEqual([replaced?.ok, replaced?.notEntered], [false, 'other-process']);
  assert.match(replaced!.error!, /is another process now/);
});

test('peek: a refused container is reported as refused, not as unreadable files', async () => {
  const view = (who: ChosenProcess): NamespaceView => ({
    ns: { ...who, pids: [who.pid] },
    identity: { cgroup: '/test' },
    statuses: [],
    fuseDevs: new Set(),
    ourTargets: ['/proc/meminfo'],
  });
  const report = await peekContainers(
    helperPath,
    host.proc,
    [view({ ...chosen(), startTime: 1 }), view(chosenProcess(1, host.proc))],
    { sampleSize: 10, timeoutMs: 5000 },
  );
  assert.deepEqual(report.unreadable, []);
  assert.deepEqual(report.notEntered.map((r) => r.notEntered).sort(), [
    'host-namespace',
    'other-process',
  ]);
});
