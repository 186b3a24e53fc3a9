// The node-habitat suite, run INSIDE a VM guest (Debian 12 or 13 on cgroup v2) by
// scripts/vm/guest-suite.sh, with the checkout at /mnt/repo (read-only 9p) and /mnt/work (read-write 9p:
// images in, results out). The host side (test/vm/run-vm-suite.ts) boots the guest and judges the
// results file; a check missing from it is a failure there, so every check here is recorded by name.
//
// What runs, as users run it:
//   - the agent image like the DaemonSet: privileged, host PID, anchor rshared, host /sys/fs/cgroup, and
//     podman's DEFAULT cgroup namespace (private on cgroup v2): the agent must start lxcfs in the host's;
//   - workloads as real containers: podman/crun (root, non-root, an image without shell or mount) and
//     containerd/runc via ctr, with memory and CPU limits and the anchor's files mounted read-only;
//   - drills: lxcfs SIGKILLed, lxcfs SIGSTOPped, the agent container killed and started again, the agent
//     replaced by a newer image; then the agent as a systemd unit with the guest's own lxcfs;
//   - the webhook image: non-root, read-only root, certificates from a mounted directory, a real review.
import { execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import jsonPatch from 'fast-json-patch';
import { cgroup2Mount } from '../../src/agent/host/cgroup2-options.js';
import {
  atLeast,
  parseLxcfsVersion,
  resetsCgroupOptions,
  type LxcfsVersion,
} from '../../src/agent/lxcfs/version.js';
import {
  DEFAULT_FILES,
  DEFAULT_HANG_GRACE_MS,
  DEFAULT_PROBE_INTERVAL_MS,
} from '../../src/config/defaults.js';
import { formatStandingCost, measureStandingCost } from '../helpers/standing-cost.js';
import { waitUntil } from '../helpers/wait.js';

const REPO = '/mnt/repo';
const WORK = '/mnt/work';
const CLI = `${REPO}/dist/src/cli/main.js`;
const NS = 'localhost/lxcfs-webhook-test';
const AGENT_IMAGE = `${NS}/agent:vm`;
const ROLLOUT_IMAGE = `${NS}/agent:vm-rollout`;
const WORKLOAD_IMAGE = `${NS}/node-trixie:24`;
const DISTROLESS_IMAGE = `${NS}/distroless-node:24`;
const WEBHOOK_IMAGE = `${NS}/webhook:vm`;
const ANCHOR = '/var/lib/lxcfs';
const FUSE = '/run/lxcfs-webhook/fuse';
const CTR_NS = 'lxcfs-vm';
/** The workload image unpacked, for `ctr run --rootfs` (containerd and runc, without an image import). */
const CTR_ROOTFS = '/mnt/images/rootfs-workload';
/** Longest any single command may take; a hung one is killed and fails its check. */
const COMMAND_TIMEOUT_MS = 120_000;
/** How long workloads may take to read their own values again after a drill. */
const RECOVERY_TIMEOUT_MS = 150_000;

// ---------------------------------------------------------------------------------------------------
// Results: written after every check, so a guest that hangs later still leaves what it got.

interface Check {
  name: string;
  ok: boolean;
  ms: number;
  detail: string;
}
/** One file as one workload read it: `shows` is what it showed in the README's words ('' when it cannot tell). */
interface Row {
  file: string;
  workload: string;
  agent: string;
  lxcfs: string;
  expected: string;
  seen: string;
  ok: boolean;
  shows: string;
}
const results = {
  guest: {} as Record<string, string>,
  checks: [] as Check[],
  figures: {} as Record<string, number | string>,
  table: [] as Row[],
  /** The node's cgroup2 superblock options at each stage. */
  cgroup2: [] as Array<{ stage: string; options: string }>,
  complete: false,
};
/** The results file as the guest writes it; run-vm-suite.ts reads it with this type. */
export type GuestResults = typeof results;
const suiteStart = Date.now();

function save(): void {
  writeFileSync(`${WORK}/results.json.tmp`, JSON.stringify(results, null, 1));
  // rename over 9p is atomic enough for a reader that only looks after the guest powered off
  writeFileSync(`${WORK}/results.json`, readFileSync(`${WORK}/results.json.tmp`));
}

function say(line: string): void {
  const stamped = `[vm ${((Date.now() - suiteStart) / 1000).toFixed(1)}s] ${line}`;
  console.log(stamped);
  appendFileSync(`${WORK}/suite.log`, `${stamped}\n`);
}

async function check(name: string, fn: () => Promise<string | void>): Promise<boolean> {
  const t0 = Date.now();
  let ok = true;
  let detail: string;
  try {
    detail = (await fn()) ?? '';
  } catch (err) {
    ok = false;
    detail = (err as Error).message;
  }
  const ms = Date.now() - t0;
  results.checks.push({ name, ok, ms, detail: detail.slice(0, 2000) });
  say(
    `${ok ? 'PASS' : 'FAIL'} ${name} (${ms} ms)${detail ? `: ${detail.split('\n')[0]!.slice(0, 300)}` : ''}`,
  );
  save();
  return ok;
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------------
// Commands, each bounded.

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : err.killed ? 124 : 1) : 0;
        resolve({
          code,
          stdout,
          stderr: err && code === 124 ? `${stderr}\n(killed after ${timeoutMs} ms)` : stderr,
        });
      },
    );
  });
}

async function must(
  cmd: string,
  args: readonly string[],
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} → exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-800)}`,
    );
  return r.stdout;
}

const podman = (...args: string[]) =>
  must('podman', args[0] === 'run' ? ['run', '--pull=never', ...args.slice(1)] : args);
const ctr = (...args: string[]) => must('ctr', ['-n', CTR_NS, ...args]);
const cli = (...args: string[]) => must('node', [CLI, ...args]);
/** `check node` inside the agent container, as an operator runs it with `kubectl exec`. */
const checkNodeInAgent = () =>
  run('podman', ['exec', 'lxcfs-agent', 'node', '/app/dist/src/cli/main.js', 'check', 'node']);

async function httpStatus(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.text();
  return res.status;
}

// ---------------------------------------------------------------------------------------------------
// Workloads

interface Workload {
  name: string;
  runtime: 'podman' | 'ctr';
  image: string;
  user?: string;
  memMiB: number;
  cpus: number;
  /** false: no shell, no mount binary; files are read with node. */
  shell: boolean;
  startedAt: number;
  pid?: number;
  /** When assertOwnValues last read its files (through the lxcfs running then). */
  lastReadAt?: number;
  /** `parent`: the limits are on a parent cgroup only, as with pod-level resources (cpus, memMiB are the parent's). */
  cpuLimit?: 'parent';
}

const READ_SCRIPT_SH = `for f in ${DEFAULT_FILES.join(' ')}; do echo "==== $f"; cat "$f" 2>&1 || echo "READ-ERROR"; done; echo "==== free"; free -m 2>&1; echo "==== mountinfo"; cat /proc/self/mountinfo; echo "==== id"; id -u`;
const READ_SCRIPT_NODE =
  `const fs=require('fs');for(const f of ${JSON.stringify([...DEFAULT_FILES])}){let t;try{t=fs.readFileSync(f,'utf8')}catch(e){t='READ-ERROR '+e.code+'\\n'}` +
  `process.stdout.write('==== '+f+'\\n'+t)}process.stdout.write('==== mountinfo\\n'+fs.readFileSync('/proc/self/mountinfo','utf8')+'==== id\\n'+process.getuid()+'\\n')`;

function execArgs(w: Workload, argv: readonly string[], execId: string): [string, string[]] {
  if (w.runtime === 'podman') return ['podman', ['exec', w.name, ...argv]];
  return ['ctr', ['-n', CTR_NS, 'task', 'exec', '--exec-id', execId, w.name, ...argv]];
}

let execCounter = 0;
/** Every lxcfs file as the workload reads it, by section name. */
async function readInside(w: Workload, timeoutMs = 30_000): Promise<Map<string, string>> {
  const argv = w.shell
    ? ['sh', '-c', READ_SCRIPT_SH]
    : ['/nodejs/bin/node', '-e', READ_SCRIPT_NODE];
  const [cmd, args] = execArgs(w, argv, `read-${++execCounter}`);
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0)
    throw new Error(
      `reading inside ${w.name}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`,
    );
  const sections = new Map<string, string>();
  for (const part of r.stdout.split(/^==== /m).slice(1)) {
    const nl = part.indexOf('\n');
    sections.set(part.slice(0, nl), part.slice(nl + 1));
  }
  return sections;
}

const memTotalKb = (meminfo: string | undefined) =>
  Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo ?? '')?.[1] ?? NaN);
/** CPUs the quota gives, rounded up and capped by the node's: what lxcfs --enable-cfs shows when it honours the quota. */
const quotaCpus = (w: Workload) => Math.min(Math.ceil(w.cpus), nodeCpus);
/** cpuinfo and cpu/online: the quota, except that lxcfs before 7.0 reads only the container's own cpu.max (E). */
const expectedCpus = (w: Workload, lxcfs: LxcfsVersion) =>
  w.cpuLimit === 'parent' && !atLeast(lxcfs, 7) ? nodeCpus : quotaCpus(w);
/** cpuN lines of /proc/stat: every CPU of the cpuset before 6.0.6, the quota's count from then on (B). */
const expectedStatCpus = (w: Workload, lxcfs: LxcfsVersion) =>
  atLeast(lxcfs, 6, 0, 6) ? expectedCpus(w, lxcfs) : nodeCpus;
const expectedOnline = (n: number) => (n === 1 ? '0' : `0-${n - 1}`);

/** What a CPU count shows, in the README's words; '' when the quota and the node give the same count. */
function cpuVerdict(count: number, w: Workload): string {
  if (quotaCpus(w) === nodeCpus) return '';
  if (count === quotaCpus(w))
    return w.cpuLimit === 'parent' ? "parent's quota" : 'quota, rounded up';
  return count === nodeCpus ? 'every CPU' : `${count} CPUs`;
}

/** The node's files a container's read is compared with, read just before and just after it. */
interface NodeFiles {
  stat: string;
  diskstats: string;
  loadavg: string;
  uptime: string;
}
const nodeFiles = (): NodeFiles => ({
  stat: readFileSync('/proc/stat', 'utf8'),
  diskstats: readFileSync('/proc/diskstats', 'utf8'),
  loadavg: readFileSync('/proc/loadavg', 'utf8'),
  uptime: readFileSync('/proc/uptime', 'utf8'),
});
/** /proc/stat's `cpu` and `cpuN` lines: name → numbers. */
function statLines(text: string): Map<string, number[]> {
  return new Map(
    text
      .split('\n')
      .filter((l) => /^cpu\d* /.test(l))
      .map((l) => {
        const [name, ...values] = l.trim().split(/\s+/);
        return [name!, values.map(Number)];
      }),
  );
}
/** /proc/diskstats: device → reads completed, sectors read, writes completed, sectors written (counters that only grow). */
function diskCounters(text: string): Map<string, number[]> {
  return new Map(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const f = l.trim().split(/\s+/);
        return [f[2]!, [f[3], f[5], f[7], f[9]].map(Number)];
      }),
  );
}
const within = (low: number, value: number, high: number) => low <= value && value <= high;
/** `r/t` of /proc/loadavg: t, the threads it counts. */
const loadavgThreads = (text: string) => Number(/ \d+\/(\d+) /.exec(text)?.[1]);

/**
 * Every expectation on one workload's files, for the lxcfs that serves them; rows go to the results
 * table when `agent` is given. Each row says what the file showed in the README's words (`shows`): the
 * container's values, or the node's where lxcfs serves those (diskstats, stat's values, uptime's idle).
 */
async function assertOwnValues(w: Workload, lxcfs: LxcfsVersion, agent?: string): Promise<string> {
  const before = nodeFiles();
  const s = await readInside(w);
  w.lastReadAt = Date.now();
  const after = nodeFiles();
  const age = (Date.now() - w.startedAt) / 1000;
  const cpus = expectedCpus(w, lxcfs);
  const parent = w.cpuLimit === 'parent' ? ', limits on the parent cgroup only' : '';
  const rows: Row[] = [];
  // With the limits on the parent, only memory and CPU counts say something new.
  const row = (
    file: string,
    expected: string,
    seen: string,
    { ok, shows }: { ok: boolean; shows: string },
  ) =>
    rows.push({
      file: `${file}${parent}`,
      workload: w.name,
      agent: agent ?? '',
      lxcfs: lxcfs.text,
      expected,
      seen,
      ok,
      shows: parent && !/MemTotal|cpuinfo|online|cpuN/.test(file) ? '' : shows,
    });
  const limit = w.cpuLimit === 'parent' ? "parent's limit" : "container's limit";
  const mem = memTotalKb(s.get('/proc/meminfo'));
  row('/proc/meminfo MemTotal', `${w.memMiB * 1024} kB`, `${mem} kB`, {
    ok: mem === w.memMiB * 1024,
    shows: mem === w.memMiB * 1024 ? limit : mem === nodeMemKb ? "node's" : `${mem} kB`,
  });
  if (w.shell) {
    const free = Number(/^Mem:\s+(\d+)/m.exec(s.get('free') ?? '')?.[1]);
    row('free -m total', `${w.memMiB}`, `${free}`, {
      ok: free === w.memMiB,
      shows: free === w.memMiB ? limit : `${free} MiB`,
    });
  }
  const processors = (s.get('/proc/cpuinfo') ?? '').match(/^processor\s*:/gm)?.length ?? 0;
  row('/proc/cpuinfo processors', `${cpus}`, `${processors}`, {
    ok: processors === cpus,
    shows: cpuVerdict(processors, w),
  });
  const online = (s.get('/sys/devices/system/cpu/online') ?? '').trim();
  const onlineCount = online === '0' ? 1 : Number(/^0-(\d+)$/.exec(online)?.[1] ?? -2) + 1;
  row('/sys/devices/system/cpu/online', expectedOnline(cpus), online, {
    ok: online === expectedOnline(cpus),
    shows: cpuVerdict(onlineCount, w),
  });
  const [uptime, idle] = (s.get('/proc/uptime') ?? '').trim().split(/\s+/).map(Number) as [
    number,
    number,
  ];
  // lxcfs counts from the start of the container's init; the exec and TCG add a few seconds.
  const ownUptime = uptime >= 0 && Math.abs(uptime - age) <= 20;
  row('/proc/uptime', `≈ ${age.toFixed(0)} s (container age)`, `${uptime.toFixed(0)} s`, {
    ok: ownUptime,
    shows: ownUptime ? "container's" : "node's?",
  });
  // The idle field subtracts the container's cpuacct.usage from its uptime; cgroup v2 has no cpuacct.
  row(
    '/proc/uptime idle field',
    `${uptime.toFixed(2)} (= uptime: no cpuacct on v2)`,
    idle.toFixed(2),
    { ok: idle === uptime, shows: idle === uptime ? '= uptime' : `${idle}` },
  );
  // /proc/stat on cgroup v2: no lxcfs reads cpu.stat, so the values are the node's lines for the CPUs it
  // lists (checked between two reads of the node's file); how many it lists depends on the version.
  const stat = statLines(s.get('/proc/stat') ?? '');
  const statCpus = [...stat.keys()].filter((k) => k !== 'cpu').length;
  const wantStat = expectedStatCpus(w, lxcfs);
  row('/proc/stat cpuN lines', `${wantStat}`, `${statCpus}`, {
    ok: statCpus === wantStat,
    shows: cpuVerdict(statCpus, w),
  });
  const [b, a] = [statLines(before.stat), statLines(after.stat)];
  const listed = [...stat.keys()].filter((k) => k !== 'cpu');
  const sum = (lines: Map<string, number[]>, field: number) =>
    listed.reduce((total, cpu) => total + (lines.get(cpu)?.[field] ?? NaN), 0);
  // user (0) and system (2) only ever grow; iowait may go back on an idle CPU
  const nodeValues = [0, 2].every(
    (f) =>
      within(sum(b, f), stat.get('cpu')?.[f] ?? NaN, sum(a, f)) &&
      listed.every((cpu) => within(b.get(cpu)![f]!, stat.get(cpu)![f]!, a.get(cpu)![f]!)),
  );
  row(
    '/proc/stat values',
    `node's, for the ${listed.length} CPUs listed`,
    `cpu user ${stat.get('cpu')?.[0]} (node ${sum(b, 0)}..${sum(a, 0)})`,
    { ok: nodeValues, shows: nodeValues ? "node's" : "not the node's" },
  );
  const threads = loadavgThreads(s.get('/proc/loadavg') ?? '');
  const nodeThreads = loadavgThreads(before.loadavg);
  const ownLoad = threads < nodeThreads / 2;
  row(
    '/proc/loadavg',
    `container's (lxcfs -l): few of the node's ${nodeThreads} threads`,
    (s.get('/proc/loadavg') ?? '').trim(),
    {
      ok: ownLoad,
      shows: ownLoad
        ? "container's"
        : Math.abs(threads - nodeThreads) <= nodeThreads / 4
          ? "node's"
          : `${threads} threads`,
    },
  );
  const swaps = (s.get('/proc/swaps') ?? '').trim().split('\n');
  row(
    '/proc/swaps',
    'header only (no swap on the guest)',
    swaps[0]!.replace(/\s+/g, ' ').slice(0, 30),
    {
      ok: swaps[0]!.startsWith('Filename') && swaps.length === 1,
      shows:
        swaps.length === 1 ? 'header only (no swap on the guests)' : `${swaps.length - 1} entries`,
    },
  );
  const disks = diskCounters(s.get('/proc/diskstats') ?? '');
  const [db, da] = [diskCounters(before.diskstats), diskCounters(after.diskstats)];
  const nodeDisks =
    disks.size > 0 &&
    [...db.keys()].every((d) => disks.has(d)) &&
    [...disks].every(([d, c]) =>
      c.every((v, i) => within(db.get(d)?.[i] ?? NaN, v, da.get(d)?.[i] ?? NaN)),
    );
  row(
    '/proc/diskstats',
    `node's: every device, counters between two reads of the node's (${db.size} devices)`,
    `${disks.size} devices`,
    { ok: nodeDisks, shows: nodeDisks ? "node's" : "not the node's" },
  );
  // Served by lxcfs, not the kernel: every file is a read-only fuse.lxcfs mount in the container.
  const mountinfo = s.get('mountinfo') ?? '';
  const unserved = DEFAULT_FILES.filter(
    (f) =>
      !mountinfo
        .split('\n')
        .some(
          (l) =>
            l.split(' ')[4] === f &&
            / - fuse\.lxcfs /.test(l) &&
            /\bro\b/.test(l.split(' ')[5] ?? ''),
        ),
  );
  row(
    'mounts (fuse.lxcfs, ro)',
    `${DEFAULT_FILES.length} files`,
    unserved.length === 0 ? `${DEFAULT_FILES.length} files` : `missing ${unserved.join(',')}`,
    { ok: unserved.length === 0, shows: '' },
  );
  if (w.user) {
    const uid = (s.get('id') ?? '').trim();
    row('uid', w.user.split(':')[0]!, uid, { ok: uid === w.user.split(':')[0], shows: '' });
  }
  if (agent) results.table.push(...rows);
  const bad = rows.filter((r) => !r.ok);
  assert(
    bad.length === 0,
    `${w.name} (lxcfs ${lxcfs.text}): ${bad.map((r) => `${r.file} expected ${r.expected}, saw ${r.seen}`).join('; ')}`,
  );
  return `${w.name}: MemTotal ${mem} kB, ${processors} cpus, ${statCpus} in stat, uptime ${uptime.toFixed(0)} s (age ${age.toFixed(0)} s)`;
}

/**
 * /proc/loadavg with -l: lxcfs answers a container's first read with `0.00 0.00 0.00 0/1 <pid>` and from
 * then on counts the container's own tasks every 5 s. The distroless workload's node has several threads,
 * so a second read after the refresh tells its count from that first answer and from the node's.
 */
async function assertLoadavgRefreshed(
  w: Workload,
  lxcfs: LxcfsVersion,
  agent: string,
): Promise<string> {
  const read = async () => {
    const [cmd, args] = execArgs(
      w,
      [
        '/nodejs/bin/node',
        '-e',
        "process.stdout.write(require('fs').readFileSync('/proc/loadavg','utf8'))",
      ],
      `loadavg-${++execCounter}`,
    );
    return (await must(cmd, args)).trim();
  };
  // assertOwnValues' read was the first; lxcfs recounts every 5 s.
  if (w.lastReadAt === undefined) await read();
  await sleep(Math.max(0, 6000 - (Date.now() - (w.lastReadAt ?? Date.now()))));
  const seen = await read();
  const threads = loadavgThreads(seen);
  const nodeThreads = loadavgThreads(readFileSync('/proc/loadavg', 'utf8'));
  const ok = threads >= 2 && threads < nodeThreads / 2;
  results.table.push({
    file: '/proc/loadavg, read again after 5 s',
    workload: w.name,
    agent,
    lxcfs: lxcfs.text,
    expected: `the container's threads (2 or more, not the node's ${nodeThreads})`,
    seen,
    ok,
    shows: ok ? "container's tasks" : threads === 1 ? 'first answer (0/1)' : "node's?",
  });
  save();
  assert(
    ok,
    `${w.name}: /proc/loadavg 6 s after a first read: ${seen} (node: ${nodeThreads} threads)`,
  );
  return `${seen} (node: ${nodeThreads} threads)`;
}

/**
 * MemTotal only: the poll used while waiting for a recovery. lxcfs answers for the reader's PID namespace,
 * so entering the container's mount and PID namespaces reads exactly what its processes read; nsenter +
 * head cost milliseconds where a podman exec costs seconds of emulated CPU that the agent under test needs.
 * The image without a shell has no head: it is read with its own node.
 */
async function readsOwnMemTotal(w: Workload): Promise<boolean> {
  const [cmd, args] = w.shell
    ? (['nsenter', ['-t', String(w.pid), '-m', '-p', 'head', '-n1', '/proc/meminfo']] as [
        string,
        string[],
      ])
    : execArgs(
        w,
        [
          '/nodejs/bin/node',
          '-e',
          "process.stdout.write(require('fs').readFileSync('/proc/meminfo','utf8'))",
        ],
        `poll-${++execCounter}`,
      );
  const r = await run(cmd, args, 10_000);
  return r.code === 0 && memTotalKb(r.stdout) === w.memMiB * 1024;
}

async function initPid(w: Workload): Promise<number> {
  if (w.runtime === 'podman')
    return Number((await podman('inspect', '-f', '{{.State.Pid}}', w.name)).trim());
  const line = (await ctr('task', 'ls')).split('\n').find((l) => l.startsWith(`${w.name} `));
  return Number(line?.split(/\s+/)[1]);
}

// ---------------------------------------------------------------------------------------------------
// lxcfs and the agent

/** Sweeps the agent has run, of every trigger (its /metrics). */
async function agentSweeps(): Promise<number> {
  const res = await fetch('http://127.0.0.1:8081/metrics', { signal: AbortSignal.timeout(5000) });
  return (await res.text())
    .split('\n')
    .filter((l) => l.startsWith('lxcfs_webhook_agent_sweeps_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** The quiet window of the standing cost (bench/agent.ts measures 60 s on this machine). */
const STANDING_WINDOW_MS = 30_000;
const round2 = (n: number) => Math.round(n * 100) / 100;

const AGENT_ARGS = [
  'agent',
  `--lxcfs-root=${ANCHOR}`,
  `--fuse-mount=${FUSE}`,
  '--proc=/proc',
  '--health-port=8081',
];

/** `agent <args>` of the agent image, once, privileged, with podman `flags` and `-v` `volumes`. */
function agentOnce(
  flags: readonly string[],
  volumes: readonly string[],
  args: readonly string[],
): Promise<Run> {
  const mounts = volumes.flatMap((v) => ['-v', v]);
  return run('podman', [
    'run',
    '--pull=never',
    '--rm',
    '--privileged',
    ...flags,
    ...mounts,
    AGENT_IMAGE,
    'agent',
    ...args,
  ]);
}

/** The README's docker run line, with podman, and the runtime's default cgroup namespace. */
function agentRunArgs(image: string): string[] {
  return [
    'run',
    '-d',
    '--name',
    'lxcfs-agent',
    '--privileged',
    '--pid',
    'host',
    '--network',
    'host',
    '-v',
    `${ANCHOR}:${ANCHOR}:rshared`,
    '-v',
    '/sys/fs/cgroup:/sys/fs/cgroup',
    image,
    ...AGENT_ARGS,
  ];
}

function lxcfsPids(fuseMount = FUSE): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const argv = readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0').filter(Boolean);
        return /(^|\/)lxcfs$/.test(argv[0] ?? '') && argv.at(-1) === fuseMount;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitReady(timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  await waitUntil(
    'agent /readyz 200',
    async () => ((await httpStatus('http://127.0.0.1:8081/readyz')) === 200 ? true : undefined),
    { timeoutMs: timeoutMs, intervalMs: 1000 },
  );
  return Date.now() - t0;
}

/** The agent container's log, kept in the work directory for whoever reads a failure (LXCFS_VM_KEEP=1). */
async function saveAgentLog(name: string): Promise<void> {
  const r = await run('podman', ['logs', '-t', 'lxcfs-agent']);
  writeFileSync(`${WORK}/${name}.log`, r.stdout + r.stderr);
}

/** Time from `t0` until every workload reads its own MemTotal again. */
async function recovery(workloads: readonly Workload[], t0: number): Promise<number> {
  // One workload at a time, each until it reads right: polling all of them at once kept both emulated
  // CPUs busy and slowed down the recovery being measured.
  let failing = '';
  try {
    for (const w of workloads) {
      failing = w.name;
      const left = Math.max(1000, RECOVERY_TIMEOUT_MS - (Date.now() - t0));
      await waitUntil(
        `${w.name} reads its own MemTotal`,
        async () => ((await readsOwnMemTotal(w)) ? true : undefined),
        { timeoutMs: left, intervalMs: 1000 },
      );
    }
  } catch (err) {
    const agentLog = await run('sh', [
      '-c',
      'podman logs --tail 15 lxcfs-agent 2>&1 || journalctl -u lxcfs-webhook-agent -n 15 --no-pager',
    ]);
    throw new Error(
      `${(err as Error).message}; still wrong: ${failing} (and maybe later ones); agent log: ${agentLog.stdout.slice(-1500)}`,
      { cause: err },
    );
  }
  return Date.now() - t0;
}

const nodeCpus = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0;
const nodeMemKb = memTotalKb(readFileSync('/proc/meminfo', 'utf8'));
/** The cgroup namespace of a process, e.g. `cgroup:[4026531835]`. */
function ns(pid: number | string): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/cgroup`);
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------------------------------------------
// The node's cgroup2 options: lxcfs older than 6.0.6, started in the node's cgroup namespace, clears
// them for the whole node (lxc/lxcfs#681). Every stage of the suite records them.

const SYSTEMD_OPTIONS = 'rw,nsdelegate,memory_recursiveprot';
/** The options before any agent ran (systemd's, restored first where Debian's lxcfs.service ran at boot). */
let baseline = SYSTEMD_OPTIONS;

/** The superblock options of the node's cgroup2, as PID 1's mountinfo lists them. */
function cgroup2Options(): string {
  return (
    cgroup2Mount(readFileSync('/proc/1/mountinfo', 'utf8'))?.options.join(',') ?? 'no cgroup2 mount'
  );
}

function recordOptions(stage: string): string {
  const options = cgroup2Options();
  results.cgroup2.push({ stage, options });
  say(`cgroup2 options ${stage}: ${options}`);
  return options;
}

const optionsUnchanged = (stage: string) =>
  check(`the node's cgroup2 options are unchanged ${stage}`, async () => {
    const now = recordOptions(stage);
    assert(now === baseline, `${now}; before the agent: ${baseline}`);
    return now;
  });

/** The restore command `check node` prints in its cgroup2 problem line. */
const restoreCommandIn = (line: string) =>
  /\(as root, outside containers\): (mount -o remount,\S+ \S+)$/.exec(line)?.[1];

/** The lxcfs version and flags the agent logged (its JSON log: podman logs or the unit's journal). */
function chosenLxcfs(log: string): { version: LxcfsVersion; args: string } {
  for (const line of log.split('\n').reverse()) {
    if (!line.includes('"msg":"lxcfs version and flags"')) continue;
    const fields = JSON.parse(line.slice(line.indexOf('{'))) as {
      lxcfsVersion: string;
      lxcfsArgs: string;
    };
    const version = parseLxcfsVersion(fields.lxcfsVersion);
    if (version) return { version, args: fields.lxcfsArgs };
  }
  throw new Error('the agent logged no "lxcfs version and flags" line with a version');
}

/** The agent chose lxcfs' flags for its version: --enable-pidfd only before 7.0, -l, and lxcfs runs with them. */
function assertFlagsFor(chosen: { version: LxcfsVersion; args: string }): string {
  const want = [
    '--enable-cfs',
    ...(atLeast(chosen.version, 7) ? [] : ['--enable-pidfd']),
    '-l',
  ].join(' ');
  assert(
    chosen.args === want,
    `lxcfs ${chosen.version.text} got "${chosen.args}", expected "${want}"`,
  );
  const pids = lxcfsPids();
  assert(pids.length === 1, `lxcfs processes on ${FUSE}: ${pids.join(',') || 'none'}`);
  const argv = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0').filter(Boolean);
  assert(
    argv.slice(-1 - want.split(' ').length, -1).join(' ') === want,
    `lxcfs runs as: ${argv.join(' ')}`,
  );
  return `lxcfs ${chosen.version.text}: ${argv.join(' ')}`;
}

// ---------------------------------------------------------------------------------------------------
// A reader that poll()s an lxcfs file: lxcfs 6.0.6 and 7.0.0 answer poll() from the daemon, so it waits
// while lxcfs is frozen; the agent's hang grace (kill, restart) must free it. perl is in every Debian
// image (perl-base is essential); select() goes through the same kernel poll as poll().

const POLL_SCRIPT =
  'open(my $f, "<", "/proc/meminfo") or die "open: $!\\n"; $| = 1; print "open\\n"; my $go = <STDIN>; ' +
  'my $r = ""; vec($r, fileno($f), 1) = 1; my $n = select($r, undef, undef, 600); print "select returned $n\\n";';

interface Poller {
  /** Resolves once the file is open (opening needs a live lxcfs). */
  opened: Promise<void>;
  /** Lets it call select(); `at` is when. */
  go(): void;
  goneAt: number;
  /** Its output line and when it came. */
  done: Promise<{ line: string; at: number }>;
  /** The poller's scheduler state (/proc/<pid>/stat) a few seconds after go(). */
  stateWhileWaiting?: string;
  kill(): void;
}

function startPoller(w: Workload): Poller {
  const child = spawn('nsenter', ['-t', String(w.pid), '-m', '-p', 'perl', '-e', POLL_SCRIPT], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let openedResolve!: () => void;
  let doneResolve!: (v: { line: string; at: number }) => void;
  const poller: Poller = {
    opened: new Promise<void>((r) => (openedResolve = r)),
    done: new Promise((r) => (doneResolve = r)),
    goneAt: 0,
    go() {
      poller.goneAt = Date.now();
      child.stdin.write('go\n');
      setTimeout(() => {
        try {
          // nsenter forks the reader into the container's PID namespace: the state is its child's.
          const reader = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
            .trim()
            .split(/\s+/)[0];
          poller.stateWhileWaiting = readFileSync(`/proc/${reader}/stat`, 'utf8')
            .replace(/^.*\) /, '')
            .split(' ')[0];
        } catch {
          poller.stateWhileWaiting = 'exited';
        }
      }, 3000);
    },
    kill: () => child.kill('SIGKILL'),
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.includes('open\n')) openedResolve();
    const line = /select returned .*/.exec(out)?.[0];
    if (line) doneResolve({ line, at: Date.now() });
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => say(`poller: ${chunk.trim()}`));
  child.on('close', () =>
    doneResolve({ line: `exited: ${out.trim() || 'no output'}`, at: Date.now() }),
  );
  return poller;
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  results.guest = {
    debian: /^VERSION_CODENAME=(.*)$/m.exec(osRelease)?.[1] ?? '?',
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    cgroupfs: (await must('stat', ['-f', '-c', '%T', '/sys/fs/cgroup'])).trim(),
    lxcfs: (await must('dpkg-query', ['-W', '-f', '${Version}', 'lxcfs'])).trim(),
    podman: (await must('podman', ['--version'])).trim(),
    crun: (await must('crun', ['--version'])).split('\n')[0]!.trim(),
    containerd: (await must('containerd', ['--version'])).trim(),
    runc: (await must('runc', ['--version'])).split('\n')[0]!.trim(),
    cpus: String(nodeCpus),
    memTotalKb: String(nodeMemKb),
  };
  results.figures.bootToSuiteSeconds = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  say(`guest ${JSON.stringify(results.guest)}`);
  save();

  await check('guest boots systemd on the cgroup v2 unified hierarchy', async () => {
    assert(results.guest.cgroupfs === 'cgroup2fs', `/sys/fs/cgroup is ${results.guest.cgroupfs}`);
    assert(readlinkSync('/proc/1/exe').includes('systemd'), 'PID 1 is not systemd');
    return `${results.guest.kernel}, ${results.guest.cgroupfs}`;
  });

  await check("images are in podman's store, the workload rootfs for containerd", async () => {
    // scripts/vm/build-images.sh made both on the host: loading them here at emulation speed took minutes.
    const images = await podman('images', '--format', '{{.Repository}}:{{.Tag}}');
    for (const image of [
      AGENT_IMAGE,
      ROLLOUT_IMAGE,
      WORKLOAD_IMAGE,
      DISTROLESS_IMAGE,
      WEBHOOK_IMAGE,
    ])
      assert(images.includes(image), `podman has no ${image}: ${images}`);
    assert(existsSync(`${CTR_ROOTFS}/usr/bin/free`), `no workload rootfs at ${CTR_ROOTFS}`);
    return images.trim().split('\n').join(', ');
  });

  // -- the node as found: systemd's cgroup2 options --------------------------------------------------
  recordOptions('at boot');
  if ((await run('systemctl', ['is-active', 'lxcfs.service'])).stdout.trim() === 'active') {
    // The Debian 12 guest keeps the lxcfs package's own service (Debian enables it): it ran at boot.
    await check(
      "a node where Debian's lxcfs.service ran at boot: check node names it and the cgroup2 options it cleared; restored as check node says",
      async () => {
        const r = await run('node', [CLI, 'check', 'node']);
        const problems = r.stdout.split('\n').filter((l) => l.startsWith('  - '));
        assert(r.code === 1, `check node exit ${r.code}: ${r.stdout.slice(-600)}`);
        const service = problems.find((l) =>
          /another lxcfs \(pid \d+ on \/var\/lib\/lxcfs\) runs as the node's lxcfs\.service: .*systemctl disable --now lxcfs\.service/.test(
            l,
          ),
        );
        const options = problems.find((l) =>
          l.includes("the node's cgroup2 (/sys/fs/cgroup) has options"),
        );
        assert(service, `check node does not name lxcfs.service: ${r.stdout.slice(-800)}`);
        assert(
          options &&
            /without nsdelegate, memory_recursiveprot that systemd mounts it with: another lxcfs on this node/.test(
              options,
            ),
          `check node: ${options ?? r.stdout.slice(-800)}`,
        );
        const restore = restoreCommandIn(options);
        assert(restore, `no restore command in: ${options}`);
        // What check node says, in order: stop the service (masked so no boot brings it back), then restore.
        await must('systemctl', ['disable', '--now', 'lxcfs.service']);
        await must('systemctl', ['mask', 'lxcfs.service']);
        await run('umount', ['-l', '/var/lib/lxcfs']);
        await must('sh', ['-c', restore]);
        const now = cgroup2Options();
        assert(now === SYSTEMD_OPTIONS, `after "${restore}": ${now}`);
        return `${service.slice(4, 90)}…; ran "systemctl disable --now lxcfs.service" and "${restore}": ${now}`;
      },
    );
  }
  await check("the node's cgroup2 options before the agent are systemd's", async () => {
    baseline = recordOptions('before the agent');
    assert(baseline === SYSTEMD_OPTIONS, `${baseline}; systemd mounts ${SYSTEMD_OPTIONS}`);
    return baseline;
  });

  // -- the agent must refuse what would make lxcfs serve the node's values ----------------------------
  mkdirSync('/var/lib/lxcfs-refuse', { recursive: true });
  await check("agent refuses without the host's /sys/fs/cgroup, naming the fix", async () => {
    const r = await agentOnce(
      ['--pid', 'host', '--network', 'host'],
      ['/var/lib/lxcfs-refuse:/var/lib/lxcfs:rshared'],
      ['--health-port=0'],
    );
    assert(r.code !== 0, 'the agent started');
    assert(
      /-v \/sys\/fs\/cgroup:\/sys\/fs\/cgroup/.test(r.stdout + r.stderr),
      `no fix named: ${(r.stdout + r.stderr).slice(-400)}`,
    );
    return (r.stdout + r.stderr).trim().split('\n').at(-1)!.slice(0, 300);
  });
  await check('agent refuses without host PID, naming the fix', async () => {
    const r = await agentOnce(
      ['--network', 'host'],
      ['/var/lib/lxcfs-refuse:/var/lib/lxcfs:rshared', '/sys/fs/cgroup:/sys/fs/cgroup'],
      ['--health-port=0'],
    );
    assert(r.code !== 0, 'the agent started');
    assert(
      /--pid host/.test(r.stdout + r.stderr),
      `no fix named: ${(r.stdout + r.stderr).slice(-400)}`,
    );
    return (r.stdout + r.stderr).trim().split('\n').at(-1)!.slice(0, 300);
  });

  // -- the agent as the DaemonSet runs it ------------------------------------------------------------
  mkdirSync(ANCHOR, { recursive: true });
  let agentOk = await check(
    'agent container (podman, private cgroupns by default) becomes ready',
    async () => {
      const t0 = Date.now();
      await podman(...agentRunArgs(AGENT_IMAGE));
      const ms = await waitReady();
      results.figures.agentReadySeconds = (Date.now() - t0) / 1000;
      return `ready ${ms} ms after podman run returned`;
    },
  );
  await check(
    "lxcfs runs in the host's cgroup namespace although the agent container has its own",
    async () => {
      const agentPid = Number(
        (await podman('inspect', '-f', '{{.State.Pid}}', 'lxcfs-agent')).trim(),
      );
      const pids = lxcfsPids();
      assert(pids.length === 1, `lxcfs processes on ${FUSE}: ${pids.join(',') || 'none'}`);
      const detail = `host ${ns(1)}, agent ${ns(agentPid)}, lxcfs ${ns(pids[0]!)}`;
      results.figures.cgroupnsPodman = detail;
      assert(
        ns(agentPid) !== ns(1),
        `podman gave the agent the host's cgroup namespace (${detail}): this check is meant for the default private one`,
      );
      assert(ns(pids[0]!) === ns(1), detail);
      const logs = await podman('logs', 'lxcfs-agent');
      assert(
        /lxcfs starts in the host/.test(logs),
        'the agent did not log that it enters the host cgroup namespace',
      );
      return detail;
    },
  );
  let currentLxcfs = parseLxcfsVersion('0.0.0')!;
  await check('lxcfs starts with the flags its version takes', async () => {
    const chosen = chosenLxcfs(await podman('logs', 'lxcfs-agent'));
    currentLxcfs = chosen.version;
    results.guest.imageLxcfs = chosen.version.text;
    assert(
      atLeast(chosen.version, 6, 0, 6),
      `the agent image ships lxcfs ${chosen.version.text}, which clears the node's cgroup2 options`,
    );
    return assertFlagsFor(chosen);
  });
  await optionsUnchanged(`after the agent started lxcfs ${currentLxcfs.text}`);

  const docker = (await cli('docker-args')).split(/\s+/).filter(Boolean);
  const workloads: Workload[] = [
    {
      name: 'pod-root',
      runtime: 'podman',
      image: WORKLOAD_IMAGE,
      memMiB: 256,
      cpus: 0.5,
      shell: true,
      startedAt: 0,
    },
    {
      name: 'pod-nonroot',
      runtime: 'podman',
      image: WORKLOAD_IMAGE,
      user: '1000:1000',
      memMiB: 384,
      cpus: 1.5,
      shell: true,
      startedAt: 0,
    },
    {
      name: 'pod-distroless',
      runtime: 'podman',
      image: DISTROLESS_IMAGE,
      user: '65532:65532',
      memMiB: 192,
      cpus: 1,
      shell: false,
      startedAt: 0,
    },
    {
      name: 'ctr-runc',
      runtime: 'ctr',
      image: WORKLOAD_IMAGE,
      memMiB: 320,
      cpus: 0.5,
      shell: true,
      startedAt: 0,
    },
    // Pod-level resources: half a CPU and 224 MiB on the pod's cgroup, nothing on the container's.
    {
      name: 'ctr-parent-limits',
      runtime: 'ctr',
      image: WORKLOAD_IMAGE,
      memMiB: 224,
      cpus: 0.5,
      shell: true,
      startedAt: 0,
      cpuLimit: 'parent',
    },
  ];
  await check(
    'workloads start: podman/crun (root, non-root, no shell or mount) and ctr/runc (one with its limits on the parent cgroup only)',
    async () => {
      for (const w of workloads) {
        if (w.runtime === 'podman') {
          const cmd = w.shell
            ? ['sleep', 'infinity']
            : ['/nodejs/bin/node', '-e', 'setInterval(() => {}, 1 << 30)'];
          await podman(
            'run',
            '-d',
            '--name',
            w.name,
            '--runtime',
            'crun',
            '--network',
            'none',
            `--memory=${w.memMiB}m`,
            `--cpus=${w.cpus}`,
            ...(w.user ? ['--user', w.user] : []),
            ...docker,
            w.image,
            ...cmd,
          );
        } else {
          const mounts = DEFAULT_FILES.flatMap((f) => [
            '--mount',
            `type=bind,src=${ANCHOR}${f},dst=${f},options=rbind:ro`,
          ]);
          // --rootfs carries no image config: PATH is given here, and exec inherits it.
          let limits = [
            '--memory-limit',
            String(w.memMiB * 1024 * 1024),
            '--cpu-quota',
            String(Math.round(w.cpus * 100_000)),
            '--cpu-period',
            '100000',
          ];
          if (w.cpuLimit === 'parent') {
            // A "pod" cgroup with the limits and the container below it with none (runc, cgroupfs driver).
            const pod = '/sys/fs/cgroup/lxcfs-vm-pod';
            writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+cpuset +cpu +memory +pids');
            mkdirSync(pod, { recursive: true });
            writeFileSync(`${pod}/cpu.max`, `${Math.round(w.cpus * 100_000)} 100000`);
            writeFileSync(`${pod}/memory.max`, String(w.memMiB * 1024 * 1024));
            limits = ['--cgroup', `/lxcfs-vm-pod/${w.name}`];
          }
          await ctr(
            'run',
            '-d',
            '--runtime',
            'io.containerd.runc.v2',
            '--env',
            'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            '--rootfs',
            ...limits,
            ...mounts,
            CTR_ROOTFS,
            w.name,
            'sleep',
            'infinity',
          );
        }
        w.startedAt = Date.now();
        w.pid = await initPid(w);
      }
      return workloads.map((w) => `${w.name} pid ${w.pid}`).join(', ');
    },
  );
  for (const w of workloads)
    await check(`${w.name} reads its own values`, () =>
      assertOwnValues(w, currentLxcfs, 'podman agent image'),
    );
  const distroless = workloads.find((w) => !w.shell)!;
  await check("/proc/loadavg counts the container's own tasks once lxcfs has refreshed it", () =>
    assertLoadavgRefreshed(distroless, currentLxcfs, 'podman agent image'),
  );
  await check('check node (inside the agent container) is OK', async () => {
    const r = await checkNodeInAgent();
    assert(r.code === 0, `exit ${r.code}: ${r.stdout.slice(-600)}`);
    return r.stdout.split('\n')[0]!;
  });
  await check(
    'standing cost while nothing changes (figures only; the guest emulates its CPU)',
    async () => {
      // Past the sweeps the agent runs after the workloads' new cgroups (the last 10 s after them), and
      // past the page-out of the code its start used (three sweep intervals after its start sweep).
      await sleep(12_000);
      const released = await waitUntil(
        "the agent's start-up code pages given back",
        async () =>
          (await podman('logs', 'lxcfs-agent'))
            .split('\n')
            .find((l) => l.includes('"code pages given back"') || l.includes('stay in the RSS')),
        { timeoutMs: 90_000, intervalMs: 2_000 },
      );
      const pageOut = JSON.parse(released) as Record<string, unknown>;
      assert(pageOut.msg === 'code pages given back', `the agent did not page out: ${released}`);
      results.figures['standing RSS agent before the page-out (MiB)'] = Number(
        pageOut.rssBeforeMiB,
      );
      results.figures['standing RSS agent right after the page-out (MiB)'] = Number(
        pageOut.rssAfterMiB,
      );
      const agentPid = Number(await podman('inspect', '-f', '{{.State.Pid}}', 'lxcfs-agent'));
      const sweepsBefore = await agentSweeps();
      const cost = await measureStandingCost(agentPid, lxcfsPids()[0]!, STANDING_WINDOW_MS);
      results.figures['standing sweeps in the window'] = (await agentSweeps()) - sweepsBefore;
      results.figures['standing CPU agent (ms/s)'] = round2(cost.agentMsPerS);
      results.figures['standing CPU helpers (ms/s)'] = round2(cost.helpersMsPerS);
      results.figures['standing CPU lxcfs (ms/s)'] = round2(cost.lxcfsMsPerS);
      results.figures['standing RSS agent (MiB)'] = round2(cost.agentRssMiB);
      return formatStandingCost(cost);
    },
  );

  // -- drills ----------------------------------------------------------------------------------------
  const before = new Map(workloads.map((w) => [w.name, w.pid]));
  const notRecreated = async () => {
    for (const w of workloads)
      assert((await initPid(w)) === before.get(w.name), `${w.name} was recreated`);
  };
  const drill = async (name: string, act: () => Promise<void>) =>
    check(`drill: ${name}`, async () => {
      const t0 = Date.now();
      await act();
      const ms = await recovery(workloads, t0);
      results.figures[`recovery ${name} (s)`] = ms / 1000;
      await notRecreated();
      for (const w of workloads) await assertOwnValues(w, currentLxcfs);
      return `every workload reads its own values ${ms} ms after the fault, none recreated`;
    });

  // A process that keeps /proc/meminfo open across the kill: a remount cannot fix its descriptor.
  await podman('exec', '-d', 'pod-root', 'sh', '-c', 'exec 3</proc/meminfo; exec sleep 100000');
  await drill('lxcfs SIGKILL', async () => {
    const pids = lxcfsPids();
    assert(pids.length === 1, `lxcfs: ${pids.join(',')}`);
    process.kill(pids[0]!, 'SIGKILL');
  });
  await check('a process holding a dead lxcfs file open is reported', async () => {
    const line = await waitUntil(
      'the agent reports the holder',
      async () =>
        (await podman('logs', 'lxcfs-agent'))
          .split('\n')
          .find(
            (l) => /holds a descriptor on a dead lxcfs file/.test(l) && /"comm":"sleep"/.test(l),
          ),
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    return line.slice(0, 300);
  });
  await check(
    'the remount took the path this kernel has (MOVE_MOUNT_BENEATH from 6.5, else detach then attach)',
    async () => {
      const [major, minor] = results.guest.kernel!.split('.').map(Number) as [number, number];
      const expected = major > 6 || (major === 6 && minor >= 5) ? 'beneath' : 'detach-attach';
      const hows = new Set<string>();
      for (const line of (await podman('logs', 'lxcfs-agent')).split('\n')) {
        if (!line.includes('"msg":"remounted"')) continue;
        for (const how of String((JSON.parse(line) as { how?: string }).how ?? '').split(','))
          hows.add(how);
      }
      results.figures.remountHow = [...hows].join(',');
      assert(hows.size > 0, 'the agent logged no remount');
      assert(
        [...hows].every((h) => h === expected),
        `remounts used ${[...hows].join(',')}, expected ${expected} on ${results.guest.kernel}`,
      );
      return `${expected} on ${results.guest.kernel}`;
    },
  );
  await optionsUnchanged('after lxcfs was killed and restarted');
  let poller: Poller | undefined;
  await drill('lxcfs SIGSTOP (hung)', async () => {
    const pids = lxcfsPids();
    assert(pids.length === 1, `lxcfs: ${pids.join(',')}`);
    poller = startPoller(workloads[0]!);
    await Promise.race([
      poller.opened,
      sleep(60_000).then(() => {
        throw new Error('the poller did not open /proc/meminfo');
      }),
    ]);
    process.kill(pids[0]!, 'SIGSTOP');
    poller.go();
  });
  await check(
    'a poll()ing reader of a frozen lxcfs waits as long as lxcfs is frozen and is freed when the agent kills it',
    async () => {
      const p = poller!;
      const done = await Promise.race([p.done, sleep(120_000).then(() => undefined)]);
      p.kill();
      assert(done, 'the poller had not returned 2 minutes after the freeze');
      const waited = (done.at - p.goneAt) / 1000;
      results.figures.pollFreedAfterSeconds = waited;
      // 6.0.6 and 7.0.0 answer poll() from the daemon (D, lxc/lxcfs 4ae2b3c); older ones let the kernel answer.
      const waits = atLeast(currentLxcfs, 6, 0, 6);
      const grace = (DEFAULT_HANG_GRACE_MS + DEFAULT_PROBE_INTERVAL_MS) / 1000;
      const ok = waits ? waited >= 5 && waited <= grace + 30 : waited < 5;
      results.table.push({
        file: 'poll() on /proc/meminfo while lxcfs is frozen',
        workload: 'pod-root',
        agent: 'podman agent image',
        lxcfs: currentLxcfs.text,
        expected: waits
          ? `waits until the agent kills lxcfs (hang grace ${DEFAULT_HANG_GRACE_MS / 1000} s)`
          : 'returns at once',
        seen: `${done.line} after ${waited.toFixed(1)} s, state ${p.stateWhileWaiting} while waiting`,
        ok,
        shows: waited >= 5 ? 'waits until the agent kills the frozen lxcfs' : 'returns at once',
      });
      save();
      assert(
        ok,
        `lxcfs ${currentLxcfs.text}: the poller returned ${waited.toFixed(1)} s after the freeze (${done.line})`,
      );
      return `${done.line} ${waited.toFixed(1)} s after the freeze (state ${p.stateWhileWaiting} while waiting; hang grace ${DEFAULT_HANG_GRACE_MS / 1000} s)`;
    },
  );
  await optionsUnchanged('after a hung lxcfs was killed and restarted');
  await drill('agent container SIGKILLed and started again', async () => {
    await podman('kill', '-s', 'KILL', 'lxcfs-agent');
    await podman('start', 'lxcfs-agent');
  });
  await optionsUnchanged('after the agent container was killed and started again');
  await drill('agent rollout to a newer image', async () => {
    await saveAgentLog('agent-before-rollout');
    await podman('stop', '-t', '60', 'lxcfs-agent');
    await podman('rm', 'lxcfs-agent');
    await podman(...agentRunArgs(ROLLOUT_IMAGE));
  });
  agentOk =
    (await check('rolled-out agent is ready and check node is OK', async () => {
      await waitReady();
      const image = (await podman('inspect', '-f', '{{.ImageName}}', 'lxcfs-agent')).trim();
      assert(image.includes('vm-rollout'), `agent runs ${image}`);
      const r = await checkNodeInAgent();
      assert(r.code === 0, `check node exit ${r.code}: ${r.stdout.slice(-600)}`);
      return image;
    })) && agentOk;
  await optionsUnchanged('after the rollout to a newer image');

  // -- lxcfs in a private cgroup namespace: what goes wrong, and that check node says so -------------
  await check(
    "an lxcfs in a private cgroup namespace serves the node's values, and check node reports it",
    async () => {
      mkdirSync('/run/rogue/fuse', { recursive: true });
      const rogue = execFile(
        'unshare',
        ['--cgroup', 'lxcfs', '-f', '-p', '/run/rogue/lxcfs.pid', '/run/rogue/fuse'],
        { timeout: 300_000 },
      );
      try {
        await waitUntil(
          'rogue lxcfs mounted',
          async () =>
            readFileSync('/proc/self/mountinfo', 'utf8').includes(' /run/rogue/fuse ')
              ? true
              : undefined,
          { timeoutMs: 30_000, intervalMs: 500 },
        );
        const seen = memTotalKb(
          await podman(
            'run',
            '--rm',
            '--runtime',
            'crun',
            '--network',
            'none',
            '--memory=256m',
            '-v',
            '/run/rogue/fuse/proc/meminfo:/proc/meminfo:ro',
            WORKLOAD_IMAGE,
            'head',
            '-n1',
            '/proc/meminfo',
          ),
        );
        results.table.push({
          file: '/proc/meminfo MemTotal',
          workload: 'podman 256m',
          agent:
            'lxcfs started in a private cgroupns (the failure the agent prevents; expected to be wrong)',
          expected: `node's ${nodeMemKb} kB (limit 262144 kB)`,
          seen: `${seen} kB`,
          ok: seen === nodeMemKb,
          lxcfs: results.guest.lxcfs ?? '?',
          shows: '',
        });
        results.figures.privateCgroupnsLxcfsMemTotalKb = seen;
        assert(
          seen === nodeMemKb,
          `a 256 MiB container read ${seen} kB through an lxcfs in a private cgroup namespace (node: ${nodeMemKb} kB): the failure this check documents did not happen`,
        );
        const r = await run('node', [
          CLI,
          'check',
          'node',
          '--fuse-mount=/run/rogue/fuse',
          '--lxcfs-root=/run/rogue/anchor',
        ]);
        assert(
          /runs in cgroup namespace cgroup:\[\d+\], not the host's/.test(r.stdout),
          `check node did not report it: ${r.stdout.slice(-500)}`,
        );
        return `a 256 MiB container read MemTotal ${seen} kB (node: ${nodeMemKb} kB); check node: ${r.stdout
          .split('\n')
          .find((l) => l.includes('cgroup namespace'))
          ?.trim()}`;
      } finally {
        rogue.kill('SIGTERM');
        await sleep(1000);
        await run('umount', ['-l', '/run/rogue/fuse']);
      }
    },
  );
  await optionsUnchanged(
    `after the guest's lxcfs ${results.guest.lxcfs} ran in a private cgroup namespace`,
  );

  // -- the agent as a systemd unit with the guest's own lxcfs (hosts without Kubernetes) --------------
  const guestLxcfs = parseLxcfsVersion(results.guest.lxcfs ?? '')!;
  await check(
    `agent as a systemd unit with the guest's lxcfs ${results.guest.lxcfs}: workloads read their own values`,
    async () => {
      await saveAgentLog('agent-after-rollout');
      await podman('stop', '-t', '60', 'lxcfs-agent');
      await podman('rm', 'lxcfs-agent');
      const t0 = Date.now();
      writeFileSync('/usr/local/bin/lxcfs-webhook', `#!/bin/sh\nexec node ${CLI} "$@"\n`);
      chmodSync('/usr/local/bin/lxcfs-webhook', 0o755);
      writeFileSync(
        '/etc/systemd/system/lxcfs-webhook-agent.service',
        readFileSync(`${REPO}/deploy/systemd/lxcfs-webhook-agent.service`),
      );
      await must('systemctl', ['daemon-reload']);
      await must('systemctl', ['start', 'lxcfs-webhook-agent.service']);
      await waitReady();
      const ms = await recovery(workloads, t0);
      results.figures['recovery podman agent → systemd unit (s)'] = ms / 1000;
      await notRecreated();
      const pids = lxcfsPids();
      assert(
        pids.length === 1 && ns(pids[0]!) === ns(1),
        `lxcfs ${pids.join(',')} not in the host cgroupns`,
      );
      currentLxcfs = guestLxcfs;
      for (const w of workloads)
        await assertOwnValues(w, guestLxcfs, `systemd unit, guest lxcfs ${results.guest.lxcfs}`);
      await assertLoadavgRefreshed(
        distroless,
        guestLxcfs,
        `systemd unit, guest lxcfs ${results.guest.lxcfs}`,
      );
      const flags = assertFlagsFor(
        chosenLxcfs(
          await must('journalctl', ['-u', 'lxcfs-webhook-agent', '-o', 'cat', '--no-pager']),
        ),
      );
      return `switched in ${ms} ms; lxcfs ${results.guest.lxcfs} served every expected value; ${flags}`;
    },
  );
  await check(
    `check node with the guest's lxcfs ${guestLxcfs.text} as a systemd unit: the node's cgroup2 options, and how to restore them`,
    async () => {
      const now = recordOptions(
        `after the guest's lxcfs ${guestLxcfs.text} started (systemd unit)`,
      );
      const r = await run('node', [CLI, 'check', 'node']);
      if (!resetsCgroupOptions(guestLxcfs)) {
        assert(
          now === baseline && r.code === 0,
          `options ${now}; check node exit ${r.code}: ${r.stdout.slice(-600)}`,
        );
        return `lxcfs ${guestLxcfs.text} left them as they were: ${now}`;
      }
      // lxcfs 5.0.3 and 6.0.4 clear them (lxc/lxcfs#681): check node must say so, blame it, and name the fix.
      assert(
        now !== baseline,
        `lxcfs ${guestLxcfs.text} left the options as they were (${now}): lxc/lxcfs#681 says it clears them`,
      );
      const problems = r.stdout.split('\n').filter((l) => l.startsWith('  - '));
      assert(
        r.code === 1 && problems.length === 1,
        `check node exit ${r.code}, expected exactly the cgroup2 problem: ${r.stdout.slice(-900)}`,
      );
      assert(
        problems[0]!.includes(
          `this agent's lxcfs ${guestLxcfs.text} clears them each time it starts`,
        ),
        problems[0]!,
      );
      const journal = await must('journalctl', [
        '-u',
        'lxcfs-webhook-agent',
        '-o',
        'cat',
        '--no-pager',
      ]);
      assert(
        journal.includes("clears the node's cgroup2 mount options"),
        'the agent did not warn at start',
      );
      const restore = restoreCommandIn(problems[0]!);
      assert(restore, `no restore command in: ${problems[0]}`);
      await must('sh', ['-c', restore]);
      const restored = recordOptions(`after "${restore}", as check node says`);
      assert(restored === baseline, `after "${restore}": ${restored}`);
      const again = await run('node', [CLI, 'check', 'node']);
      assert(
        again.code === 0,
        `check node after the restore: exit ${again.code}: ${again.stdout.slice(-600)}`,
      );
      return `lxcfs ${guestLxcfs.text} left ${now}; check node: ${problems[0]!.slice(4, 120)}…; "${restore}" gave ${restored}, check node OK`;
    },
  );

  // -- uninstall: what deploy/uninstall's clean-up DaemonSet runs, once the agent is gone ---------------
  await check(
    "uninstall (the clean-up DaemonSet's agent --uninstall) leaves no lxcfs mount, directory or process on the node",
    async () => {
      await must('systemctl', ['stop', 'lxcfs-webhook-agent.service']);
      // The clean-up DaemonSet's init container: host PID, the host's /var/lib with Bidirectional propagation.
      const r = await agentOnce(
        ['--pid', 'host', '--network', 'none'],
        ['/var/lib:/host/var/lib:rshared'],
        ['--uninstall', '--lxcfs-root=/host/var/lib/lxcfs', `--fuse-mount=${FUSE}`, '--proc=/proc'],
      );
      assert(
        r.code === 0,
        `agent --uninstall exit ${r.code}: ${(r.stdout + r.stderr).slice(-600)}`,
      );
      const left = readFileSync('/proc/1/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => / (\/var\/lib\/lxcfs|\/run\/lxcfs-webhook)(\/| )/.test(l));
      assert(left.length === 0, `mounts left: ${left.join(' | ')}`);
      assert(!existsSync(ANCHOR), `${ANCHOR} is still there`);
      assert(lxcfsPids().length === 0, `lxcfs still runs: ${lxcfsPids().join(',')}`);
      return (r.stdout + r.stderr).trim().split('\n').at(-1)!.slice(0, 200);
    },
  );
  await optionsUnchanged('after uninstall');

  // -- the webhook image ------------------------------------------------------------------------------
  await check(
    'webhook image: uid 65532, read-only root, mounted certificates, /readyz, a correct patch',
    async () => {
      const certs = '/run/webhook-certs';
      await cli('certs', '--out', certs);
      for (const f of readdirSync(certs)) chownSync(`${certs}/${f}`, 65532, 65532);
      await podman(
        'run',
        '-d',
        '--name',
        'webhook',
        '--runtime',
        'crun',
        '--read-only',
        '--network',
        'host',
        '-v',
        `${certs}:/certs:ro`,
        WEBHOOK_IMAGE,
        'serve',
        '--tls-cert=/certs/tls.crt',
        '--tls-key=/certs/tls.key',
        '--port=8443',
        '--health-port=8080',
      );
      await waitUntil(
        'webhook /readyz 200',
        async () => ((await httpStatus('http://127.0.0.1:8080/readyz')) === 200 ? true : undefined),
        { timeoutMs: 90_000, intervalMs: 1000 },
      );
      const log = await run('podman', ['logs', 'webhook']);
      assert(
        !/stays with malloc/.test(log.stdout + log.stderr),
        `serve did not load its release-memory addon: ${log.stdout.slice(-300)}`,
      );
      const pid = Number((await podman('inspect', '-f', '{{.State.Pid}}', 'webhook')).trim());
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      assert(uid === '65532', `webhook runs as uid ${uid}`);
      assert(
        (await podman('inspect', '-f', '{{.HostConfig.ReadonlyRootfs}}', 'webhook')).trim() ===
          'true',
        'root filesystem is writable',
      );
      const write = await run('podman', [
        'exec',
        'webhook',
        '/nodejs/bin/node',
        '-e',
        "require('fs').writeFileSync('/app/x', '')",
      ]);
      assert(
        write.code !== 0 && /EROFS|read-only/.test(write.stderr),
        `writing /app/x: exit ${write.code} ${write.stderr.slice(-200)}`,
      );
      const review = JSON.parse(readFileSync(`${REPO}/examples/admission-review.json`, 'utf8')) as {
        request: { uid: string; object: Pod };
      };
      const answer = await postReview(review, readFileSync(`${certs}/ca.crt`));
      assert(
        answer.response?.uid === review.request.uid && answer.response.allowed === true,
        `answer: ${JSON.stringify(answer).slice(0, 300)}`,
      );
      const patch = JSON.parse(
        Buffer.from(answer.response.patch ?? '', 'base64').toString('utf8'),
      ) as Parameters<typeof jsonPatch.applyPatch>[1];
      // Strict RFC 6902 application, as the API server does.
      const pod = jsonPatch.applyPatch(
        structuredClone(review.request.object),
        patch,
        true,
        false,
      ).newDocument;
      for (const c of pod.spec.containers) {
        for (const f of DEFAULT_FILES) {
          const m = c.volumeMounts?.find((v) => v.mountPath === f);
          assert(m?.readOnly === true, `container ${c.name}: no read-only mount at ${f}`);
          const vol = pod.spec.volumes?.find((v) => v.name === m.name);
          assert(
            vol?.hostPath?.path === `${ANCHOR}${f}`,
            `volume ${m.name} is ${JSON.stringify(vol)}`,
          );
        }
      }
      return `uid 65532, read-only root, ${patch.length} patch operations; every container mounts ${DEFAULT_FILES.length} files read-only from ${ANCHOR}`;
    },
  );
  await run('podman', ['rm', '-f', 'webhook']);
  void agentOk;
}

interface Pod {
  spec: {
    containers: Array<{
      name: string;
      volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
    }>;
    volumes?: Array<{ name: string; hostPath?: { path: string } }>;
  };
}

function postReview(
  review: unknown,
  ca: Buffer,
): Promise<{ response?: { uid: string; allowed: boolean; patch?: string } }> {
  const body = JSON.stringify(review);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: 8443,
        path: '/mutate',
        method: 'POST',
        ca,
        servername: 'lxcfs-webhook.lxcfs.svc',
        timeout: 15_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (c: string) => (text += c))
          .on('end', () => {
            try {
              resolve(
                JSON.parse(text) as {
                  response?: { uid: string; allowed: boolean; patch?: string };
                },
              );
            } catch {
              reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            }
          });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

try {
  await main();
} catch (err) {
  results.checks.push({
    name: 'suite ran to the end',
    ok: false,
    ms: Date.now() - suiteStart,
    detail: (err as Error).stack ?? String(err),
  });
  say(`suite aborted: ${(err as Error).stack}`);
}
results.figures.suiteSeconds = (Date.now() - suiteStart) / 1000;
results.complete = true;
save();
say(
  `suite done in ${results.figures.suiteSeconds} s: ${results.checks.filter((c) => !c.ok).length} of ${results.checks.length} checks failed`,
);
if (existsSync(`${WORK}/keep-running`)) await sleep(3_600_000);
