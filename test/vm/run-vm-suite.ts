// The node-habitat suite, host side: builds the images (podman, stand-in bases) and the guests
// (mmdebstrap, cached), boots each guest with QEMU, and judges what the guest wrote back. Run by
// `npm test` after the unit and integration tests; prints boot and suite times, recovery times after
// each drill, and a file × guest table.
//
//   node dist/test/vm/run-vm-suite.js            both guests
//   LXCFS_VM_GUESTS=trixie node ...              one
//
// A guest that hangs is killed at LXCFS_VM_TIMEOUT seconds (default 600; a guest run takes about 300) and fails with its console
// log; a results file that is missing, incomplete or lacks a required check is a failure.
import { spawn } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import type { GuestResults } from './guest-suite.js';

type Row = GuestResults['table'][number];

/** Checks every guest must report (by name prefix); anything else it reports must pass too. */
const REQUIRED = [
  'guest boots systemd on the cgroup v2 unified hierarchy',
  "images are in podman's store, the workload rootfs for containerd",
  "agent refuses without the host's /sys/fs/cgroup",
  'agent refuses without host PID',
  'agent container (podman, private cgroupns by default) becomes ready',
  "lxcfs runs in the host's cgroup namespace",
  'workloads start',
  'pod-root reads its own values',
  'pod-nonroot reads its own values',
  'pod-distroless reads its own values',
  'ctr-runc reads its own values',
  'check node (inside the agent container) is OK',
  "the node's cgroup2 options before the agent are systemd's",
  'lxcfs starts with the flags its version takes',
  "the node's cgroup2 options are unchanged after the agent started lxcfs",
  'ctr-parent-limits reads its own values',
  "/proc/loadavg counts the container's own tasks once lxcfs has refreshed it",
  'drill: lxcfs SIGKILL',
  "the node's cgroup2 options are unchanged after lxcfs was killed and restarted",
  'a poll()ing reader of a frozen lxcfs waits as long as lxcfs is frozen and is freed when the agent kills it',
  "the node's cgroup2 options are unchanged after a hung lxcfs was killed and restarted",
  'a process holding a dead lxcfs file open is reported',
  'the remount took the path this kernel has',
  'drill: lxcfs SIGSTOP (hung)',
  'drill: agent container SIGKILLed and started again',
  'drill: agent rollout to a newer image',
  'rolled-out agent is ready',
  'an lxcfs in a private cgroup namespace serves',
  'agent as a systemd unit',
  "check node with the guest's lxcfs",
  'uninstall (the clean-up DaemonSet',
  "the node's cgroup2 options are unchanged after uninstall",
  'webhook image',
];
/** Checks only some guests report. */
const REQUIRED_ON: Record<string, string[]> = {
  // Its lxcfs package's own service runs at boot (scripts/vm/guest/customize.sh).
  bookworm: ["a node where Debian's lxcfs.service ran at boot"],
};

/** README's table of what each file shows, by lxcfs version; the suite's measurements must say the same. */
const README_TABLE = { start: '<!-- vm-files:start', end: '<!-- vm-files:end -->' };

/** The README table: file → lxcfs version → what it shows. */
function readmeTable(): Map<string, Map<string, string>> {
  const text = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const from = text.indexOf(README_TABLE.start);
  const to = text.indexOf(README_TABLE.end);
  if (from < 0 || to < from)
    throw new Error(
      `README.md has no table between "${README_TABLE.start}" and "${README_TABLE.end}"`,
    );
  const lines = text
    .slice(from, to)
    .split('\n')
    .filter((l) => l.startsWith('|'));
  const cells = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  const versions = cells(lines[0]!)
    .slice(1)
    .map((h) => /\d+\.\d+\.\d+/.exec(h)?.[0] ?? h);
  return new Map(
    lines.slice(2).map((line) => {
      const [file, ...shows] = cells(line);
      return [file!.replace(/`/g, ''), new Map(versions.map((v, i) => [v, shows[i] ?? '']))];
    }),
  );
}

const GUESTS = (process.env.LXCFS_VM_GUESTS ?? 'bookworm,trixie')
  .split(',')
  .map((g) => g.trim())
  .filter(Boolean);
const TIMEOUT_S = Number(process.env.LXCFS_VM_TIMEOUT ?? 600);
const vm = join(repoRoot, 'scripts', 'vm');

/** Runs a script, streaming its stderr, and returns stdout; bounded by `timeoutS`. */
function runScript(args: string[], timeoutS: number): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn('timeout', ['--kill-after=10', String(timeoutS), 'bash', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from, { withFileTypes: true })) {
    if (name.isDirectory()) linkTree(join(from, name.name), join(to, name.name));
    else linkSync(join(from, name.name), join(to, name.name));
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
};

/**
 * What scripts/vm/build-images.sh saw the arm64 images and helper print under QEMU user emulation
 * (arm64.txt, "name: output" lines), judged here: each failure names what was seen.
 */
function arm64Checks(text: string): { failures: string[]; summary: string } {
  const seen = Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
  const expect: Array<[string, RegExp, string]> = [
    ['arch', /^arm64 arm64$/, 'both images are arm64'],
    [
      'agent lxcfs',
      /^"?7\.0\.0"?$/,
      "lxcfs --version in the arm64 agent image (Debian's 7.0.0, as in amd64's)",
    ],
    [
      'agent cli',
      new RegExp(`^lxcfs-webhook ${version.replace(/\./g, '\\.')} \\(Node\\.js v24\\.`),
      'lxcfs-webhook --version in the arm64 agent image',
    ],
    [
      'webhook cli',
      new RegExp(`^lxcfs-webhook ${version.replace(/\./g, '\\.')} \\(Node\\.js v24\\.`),
      'lxcfs-webhook --version in the arm64 webhook image',
    ],
    ['helper read', /^\{"ok":true/, 'the arm64 helper reads a file'],
    [
      'webhook addon',
      /^trim boolean pageOutCode true$/,
      "the arm64 webhook image's Node.js loads the release-memory addon",
    ],
    [
      'agent addon',
      /^trim boolean pageOutCode true$/,
      "the arm64 agent image's Node.js loads the release-memory addon and pages code out",
    ],
    [
      'helper file',
      /^b700$/,
      'the helper in the arm64 agent image is an AArch64 binary (ELF e_machine 0xb7)',
    ],
  ];
  const failures = expect
    .filter(([key, re]) => !re.test(seen[key] ?? ''))
    .map(([key, , what]) => `arm64: ${what}: saw "${seen[key] ?? '(nothing)'}"`);
  return {
    failures,
    summary: `arm64 under QEMU user emulation (${seen.seconds ?? '?'} s): lxcfs ${seen['agent lxcfs']}; ${seen['agent cli']}; webhook ${seen['webhook cli']}; helper ${seen['helper read']?.slice(0, 40)}`,
  };
}

async function main(): Promise<number> {
  const failures: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'lxcfs-vm-'));
  const summary: string[] = [];
  const tables: Array<Row & { guest: string }> = [];
  try {
    let t0 = Date.now();
    const images = await runScript([join(vm, 'build-images.sh'), join(scratch, 'shared')], 1200);
    if (images.code !== 0)
      throw new Error(`building the images failed (exit ${images.code}); see above`);
    summary.push(
      `images (stand-ins, amd64 and arm64 builds, image disk): ${secs(Date.now() - t0)}`,
    );
    const arm = arm64Checks(readFileSync(join(scratch, 'shared', 'arm64.txt'), 'utf8'));
    failures.push(...arm.failures);
    summary.push(arm.summary);
    for (const f of arm.failures) console.log(`  FAIL ${f}`);

    for (const guest of GUESTS) {
      console.log(`\n=== vm guest ${guest} ===`);
      t0 = Date.now();
      const built = await runScript([join(vm, 'build-guest.sh'), guest], 1200);
      const dir = built.stdout.trim().split('\n').at(-1) ?? '';
      if (built.code !== 0 || !existsSync(join(dir, 'ready'))) {
        failures.push(`${guest}: building the guest failed (exit ${built.code})`);
        continue;
      }
      const info = readFileSync(join(dir, 'info'), 'utf8');
      const buildMs = Date.now() - t0;
      const work = join(scratch, guest);
      linkTree(join(scratch, 'shared'), work);

      t0 = Date.now();
      const booted = await runScript(
        [join(vm, 'run-guest.sh'), dir, work, String(TIMEOUT_S)],
        TIMEOUT_S + 120,
      );
      const vmMs = Date.now() - t0;
      const accel = existsSync(join(work, 'accel'))
        ? readFileSync(join(work, 'accel'), 'utf8').trim()
        : '?';
      if (booted.code !== 0)
        failures.push(`${guest}: the guest did not finish (see its console above)`);

      const resultsPath = join(work, 'results.json');
      if (!existsSync(resultsPath)) {
        failures.push(`${guest}: no results file: the suite never ran or never wrote it`);
        console.log(
          readFileSync(join(work, 'console.log'), 'utf8').split('\n').slice(-60).join('\n'),
        );
        continue;
      }
      const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as GuestResults;
      if (!results.complete) failures.push(`${guest}: the suite did not run to its end`);
      for (const c of results.checks) {
        console.log(
          `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${secs(c.ms)})${c.ok ? '' : `\n       ${c.detail.split('\n').join('\n       ')}`}`,
        );
        if (!c.ok) failures.push(`${guest}: ${c.name}: ${c.detail.split('\n')[0]}`);
      }
      for (const required of [...REQUIRED, ...(REQUIRED_ON[guest] ?? [])]) {
        if (!results.checks.some((c) => c.name.startsWith(required)))
          failures.push(`${guest}: missing result "${required}"`);
      }
      if (!results.complete || results.checks.some((c) => !c.ok)) {
        console.log(`--- ${guest} suite log (last 40 lines) ---`);
        const log = join(work, 'suite.log');
        if (existsSync(log))
          console.log(readFileSync(log, 'utf8').split('\n').slice(-40).join('\n'));
      }
      const f = results.figures;
      summary.push(
        `${guest}: ${results.guest.kernel}, lxcfs ${results.guest.lxcfs}, ${results.guest.podman}, ${(results.guest.containerd ?? '?').replace(/ [0-9a-f]{40}$/, '')}; ` +
          `guest ${info.match(/built_seconds=(\d+)/)?.[1] ?? '?'} s to build (${secs(buildMs)} this run${buildMs < 5000 ? ', cached' : ''}); ` +
          `accel ${accel}; boot ${f.bootToSuiteSeconds} s; suite ${f.suiteSeconds} s; QEMU total ${secs(vmMs)}`,
      );
      for (const [key, value] of Object.entries(f).filter(
        ([k]) => k.startsWith('recovery') || k.startsWith('standing'),
      ))
        summary.push(`  ${guest} ${key}: ${value}`);
      summary.push(
        `  ${guest} cgroup namespaces (podman agent): ${f.cgroupnsPodman}; remount path: ${f.remountHow}`,
      );
      summary.push(
        `  ${guest} lxcfs in a private cgroupns, 256 MiB container read MemTotal: ${f.privateCgroupnsLxcfsMemTotalKb} kB (node ${results.guest.memTotalKb} kB)`,
      );
      summary.push(
        `  ${guest} a poll()ing reader of the frozen lxcfs ${results.guest.imageLxcfs ?? '?'} was freed after ${f.pollFreedAfterSeconds ?? '?'} s`,
      );
      summary.push(
        `  ${guest} cgroup2 superblock options (/proc/1/mountinfo), image lxcfs ${results.guest.imageLxcfs ?? '?'}, guest lxcfs ${results.guest.lxcfs}:`,
      );
      for (const { stage, options } of results.cgroup2 ?? [])
        summary.push(`    ${options.padEnd(36)} ${stage}`);
      tables.push(...results.table.map((r) => ({ ...r, guest })));
    }
  } catch (err) {
    failures.push((err as Error).message);
  } finally {
    if (process.env.LXCFS_VM_KEEP !== '1') rmSync(scratch, { recursive: true, force: true });
    else console.log(`kept ${scratch}`);
  }

  console.log('\n=== vm figures ===');
  for (const line of summary) console.log(line);
  console.log('\n=== file × guest: expected / seen ===');
  console.log('| file | guest | workload | agent | expected | seen | |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of tables)
    console.log(
      `| ${r.file} | ${r.guest} | ${r.workload} | ${r.agent} | ${r.expected} | ${r.seen} | ${r.ok ? 'ok' : 'WRONG'} |`,
    );

  // What each file shows, by lxcfs version: every guest and workload that can tell must agree, and so
  // must the README.
  const shown = new Map<string, Map<string, Set<string>>>();
  for (const r of tables.filter((t) => t.shows)) {
    const byVersion = shown.get(r.file) ?? new Map<string, Set<string>>();
    byVersion.set(r.lxcfs, (byVersion.get(r.lxcfs) ?? new Set()).add(r.shows));
    shown.set(r.file, byVersion);
  }
  const versions = [...new Set(tables.filter((t) => t.shows).map((t) => t.lxcfs))].sort();
  console.log(
    '\n=== file × lxcfs: what a container reads on cgroup v2 (README, "Which lxcfs") ===',
  );
  console.log(`| file | ${versions.map((v) => `lxcfs ${v}`).join(' | ')} |`);
  console.log(`|---|${versions.map(() => '---|').join('')}`);
  for (const [file, byVersion] of shown)
    console.log(
      `| ${file} | ${versions.map((v) => [...(byVersion.get(v) ?? [])].join(' / ') || '–').join(' | ')} |`,
    );
  let readme: Map<string, Map<string, string>> | undefined;
  try {
    readme = readmeTable();
  } catch (err) {
    failures.push((err as Error).message);
  }
  for (const [file, byVersion] of shown) {
    for (const [version, seen] of byVersion) {
      if (seen.size > 1)
        failures.push(
          `${file} on lxcfs ${version}: the guests disagree (${[...seen].join(' / ')})`,
        );
      const documented = readme?.get(file)?.get(version);
      if (readme && documented !== [...seen][0])
        failures.push(
          `README's table says "${documented ?? '(no row or column)'}" for ${file} on lxcfs ${version}; the suite saw "${[...seen].join(' / ')}"`,
        );
    }
  }
  // And the other way: every cell of the README for a version measured here was measured ('–' is "not
  // measured" in both tables).
  for (const [file, byVersion] of readme ?? []) {
    for (const version of versions) {
      const documented = byVersion.get(version);
      if (documented !== undefined && documented !== '–' && !shown.get(file)?.has(version))
        failures.push(
          `README's table says "${documented}" for ${file} on lxcfs ${version}; the suite measured nothing there`,
        );
    }
  }
  if (failures.length > 0) {
    console.log(`\nvm suite FAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    return 1;
  }
  console.log(`\nvm suite passed on ${GUESTS.join(', ')}`);
  return 0;
}

process.exitCode = await main();
