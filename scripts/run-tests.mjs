// Runs every compiled test file under Node 20 (this process's node) and then under Node 24 LTS,
// because images ship Node 24 while the code must still run on 20. `--unit`: only the tests that need
// neither root nor system packages, on this node only. Every test fails after 10 minutes instead of
// hanging the run. Node 20's `--test` neither expands globs nor finds files on its own, so the list is
// built here and an empty list is a failure.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function testFiles(dir) {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return testFiles(path);
      return name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

// Tests that need root (namespaces, mounts, cgroups) or system packages (lxcfs, fuse3, Go, kubectl,
// podman): `--unit` leaves them out, for a fast loop on any machine. Paths under dist/test/.
const NEEDS_SYSTEM = [
  'agent/agent.test.js', // real lxcfs, containers in namespaces and cgroups
  'agent/check.test.js',
  'agent/host/chosen-process.test.js', // a stand-in host: mount and pid namespaces
  'agent/host/cgroup-events.test.js', // makes cgroups
  'agent/host/mount-watch.test.js',
  'agent/host/namespaces.test.js',
  'agent/host/open-fds.test.js',
  'agent/lxcfs/',
  'agent/pid-reuse.test.js',
  'agent/repair/remount.test.js',
  'agent/repair/state-full.test.js', // a small tmpfs mounted by the native helper
  'agent/uninstall.test.js',
  'cli/agent.test.js',
  'fault/',
  'chart/', // the Go renderer, built from Debian's packaged Go sources
  'helm/helm.test.js', // the Helm model renders with it too
  'cli/certs-secret.test.js', // the chart's Job in a pod of the model: unshare, mount, the renderer
  'plumbing/release-memory.test.js', // the release-memory addon, built by a C compiler
  'package/', // npm pack with Debian's cross compiler, the arm64 helper under QEMU, kubectl
  'deploy/', // kubectl kustomize
  'images/',
];

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const only = args.filter((a) => a !== '--unit');
const testRoot = join(root, 'dist', 'test');
const files = testFiles(testRoot)
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .filter((f) => !unit || !NEEDS_SYSTEM.some((p) => relative(testRoot, f).startsWith(p)));
if (files.length === 0) {
  console.error('run-tests: found no test files under dist/test (did the build run?)');
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);

const runtimes = [
  { name: `node ${process.version}`, cmd: process.execPath, args: [] },
  { name: 'node 24 (npx node@24)', cmd: 'npx', args: ['-y', 'node@24'] },
];
if (process.env.TEST_NODE24 === '0' || unit) runtimes.pop();

/** Runs one runtime's pass with the TAP reporter, echoing it and counting its closing totals. */
function runPass(rt) {
  return new Promise((resolvePass) => {
    const child = spawn(
      rt.cmd,
      [
        ...rt.args,
        '--test',
        '--test-reporter=tap',
        '--test-concurrency=1',
        '--test-timeout=600000',
        ...files.map((f) => relative(root, f)),
      ],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, NODE_OPTIONS: '--enable-source-maps' },
      },
    );
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4096);
    });
    child.on('close', (code, signal) => {
      const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      resolvePass({
        code: code ?? signal,
        passed: count('pass'),
        failed: count('fail'),
        skipped: count('skipped'),
      });
    });
  });
}

let failed = false;
const totals = { passed: 0, failed: 0, skipped: 0 };
for (const rt of runtimes) {
  console.log(`\n=== ${rt.name} ===`);
  const result = await runPass(rt);
  totals.passed += result.passed;
  totals.failed += result.failed;
  totals.skipped += result.skipped;
  if (result.code !== 0) {
    console.error(`run-tests: ${rt.name} failed (exit ${result.code})`);
    failed = true;
  }
}
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failed || totals.passed === 0 ? 1 : 0);
