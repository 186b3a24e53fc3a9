// The cgroup watcher: the real native helper on a real cgroup subtree of this host (v1's memory
// controller, or v2), made and removed by the test.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { CgroupEvents, cgroupHierarchy } from '../../../src/agent/host/cgroup-events.js';
import { createLogger } from '../../../src/log.js';
import type { LogLine } from '../../helpers/log-lines.js';
import { helperPath } from '../../helpers/node.js';
import { waitUntil } from '../../helpers/wait.js';

test('the hierarchy watched is cgroup v2, else v1 memory, else none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cgroup-root-'));
  assert.equal(cgroupHierarchy(dir), undefined);
  mkdirSync(join(dir, 'memory'));
  writeFileSync(join(dir, 'memory', 'memory.limit_in_bytes'), '');
  assert.equal(cgroupHierarchy(dir), join(dir, 'memory'));
  writeFileSync(join(dir, 'cgroup.controllers'), 'cpu memory\n');
  assert.equal(cgroupHierarchy(dir), dir);
});

/** The agent's logger, its lines kept for the test. */
function recordingLog() {
  const lines: LogLine[] = [];
  const log = createLogger('agent', 'debug', {
    write: (line: string) => lines.push(JSON.parse(line) as LogLine),
  });
  return { log, lines };
}

test('cgroups created below the hierarchy are reported, nested ones too; a killed watcher is replaced', async (t) => {
  const hierarchy = cgroupHierarchy();
  assert.ok(hierarchy, 'this host has cgroup v2 or v1 memory');
  const root = join(hierarchy, `${basename(mkdtempSync(join(tmpdir(), 'lxcfs-webhook-cg-')))}`);
  mkdirSync(join(root, 'existing'), { recursive: true });
  const made = [join(root, 'existing')];
  t.after(() => {
    for (const dir of made.reverse()) rmdirSync(dir, { recursive: false });
    rmdirSync(root);
  });

  let created = 0;
  let coverageChanges = 0;
  const { log, lines } = recordingLog();
  const events = new CgroupEvents(
    { helper: helperPath, root, backoff: { firstMs: 100, maxMs: 1000 } },
    { cgroupCreated: () => created++, coverageChanged: () => coverageChanges++ },
    log,
  );
  t.after(() => events.stop());
  events.start();
  await waitUntil('every cgroup watched', () => events.complete);
  assert.equal(coverageChanges, 1);

  // A pod's cgroup, then its container's inside it at once: the new directory is walked as it is watched.
  const pod = join(root, 'existing', 'pod');
  mkdirSync(join(pod, 'container'), { recursive: true });
  made.push(pod, join(pod, 'container'));
  await waitUntil('both reported', () => created >= 2);
  const nested = join(pod, 'container', 'nested');
  mkdirSync(nested);
  made.push(nested);
  await waitUntil('a cgroup in the new one reported', () => created >= 3);

  // Removing cgroups wakes nobody: only creation is asked for.
  rmdirSync(made.pop()!);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(created, 3);

  // Killed: incomplete (the agent polls) until a new watcher has walked everything again.
  process.kill(events.pid!, 'SIGKILL');
  await waitUntil('incomplete', () => !events.complete);
  await waitUntil('complete again', () => events.complete, { timeoutMs: 5000 });
  assert.equal(coverageChanges, 3);
  assert.ok(lines.some((l) => String(l.msg).startsWith('cgroup notifications stopped')));
  assert.ok(lines.some((l) => l.msg === 'cgroup notifications back'));
  mkdirSync(join(pod, 'after'));
  made.push(join(pod, 'after'));
  await waitUntil('the new watcher reports', () => created >= 4);
});

test('a hierarchy that cannot be watched is never complete, is logged once and retried', async (t) => {
  const { log, lines } = recordingLog();
  const events = new CgroupEvents(
    {
      helper: helperPath,
      root: join(tmpdir(), 'no-such-cgroup-hierarchy'),
      backoff: { firstMs: 50, maxMs: 200 },
    },
    { cgroupCreated: () => undefined, coverageChanged: () => undefined },
    log,
  );
  t.after(() => events.stop());
  events.start();
  await waitUntil(
    'retried',
    () => lines.filter((l) => l.msg === 'cgroup watcher started').length >= 3,
    {
      timeoutMs: 5000,
    },
  );
  assert.equal(events.complete, false);
  const warnings = lines.filter((l) => l.level === 'warn');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.equal(warnings[0]!.errno, 'ENOENT');
});
