// What lxcfs' `-l` (a per-container /proc/loadavg) costs, for the README's "Which lxcfs": lxcfs' own CPU
// time over a minute, run by the real agent without and then with `-l`, on a node of CONTAINERS
// containers (mount + pid namespaces, cgroups; test/helpers/container.ts) with TASKS processes each.
// lxcfs tracks a container from its first read of /proc/loadavg on, and then every 5 s lists the tasks of
// each tracked container and reads the status file of every one (src/proc_loadavg.c: load_begin,
// refresh_load), so every container reads it once here. The agent sweeps only at start (a 60 min
// interval), so its reads inside containers do not count; its 5 s probes go to both runs alike. Needs
// root, lxcfs and fuse3, like the agent's tests; this host's lxcfs and cgroups are the measured ones.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readLxcfsVersion } from '../src/agent/lxcfs/version.js';
import { DEFAULT_FILES } from '../src/config/defaults.js';
import type { TestContainer } from '../test/helpers/container.js';
import { LIMITS, TestNode } from '../test/helpers/node.js';
import { waitUntil } from '../test/helpers/wait.js';

const CONTAINERS = 200;
const TASKS = 25;
const WINDOW_MS = 60_000;
const CONCURRENCY = 16;
const CLOCK_TICKS_PER_S = 100; // USER_HZ

/** utime + stime of a process, all its threads, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

/** The cgroup.procs file of the container's cpu cgroup, as a path on the host (v1 or v2). */
function cpuProcsFile(c: TestContainer): string {
  const lines = readFileSync(`/proc/${c.pid}/cgroup`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(':'));
  const v1 = lines.find(([, controllers]) => controllers!.split(',').includes('cpu'));
  return v1
    ? `/sys/fs/cgroup/cpu${v1[2]}/cgroup.procs`
    : `/sys/fs/cgroup${lines.find(([id]) => id === '0')![2]}/cgroup.procs`;
}

async function inBatches<T>(
  items: readonly T[],
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < items.length; i += CONCURRENCY)
    await Promise.all(items.slice(i, i + CONCURRENCY).map(work));
}

const node = new TestNode();
try {
  const version = readLxcfsVersion('lxcfs', 5000)?.text ?? '?';
  const containers: TestContainer[] = [];
  let agent = await node.startAgent([
    '--probe-interval',
    '5s',
    '--sweep-interval',
    '60m',
    '--lxcfs-loadavg=false',
  ]);
  await agent.waitReady(60_000);
  await inBatches([...Array(CONTAINERS).keys()], async (i) => {
    const c = await node.container({ name: `c${i}`, ...LIMITS, files: DEFAULT_FILES });
    // TASKS - 1 sleeps beside the container's init, in its cgroup and pid namespace
    const started = await c.exec(
      [
        'sh',
        '-c',
        `echo $$ > ${cpuProcsFile(c)}; for i in $(seq ${TASKS - 1}); do sleep 100000 </dev/null >/dev/null 2>&1 & done`,
      ],
      30_000,
    );
    if (started.code !== 0) throw new Error(`tasks in ${c.spec.name}: ${started.stderr}`);
    containers.push(c);
  });

  const figures: string[] = [];
  for (const loadavg of [false, true]) {
    if (loadavg) {
      agent.kill('SIGTERM');
      await agent.exited;
      agent = await node.startAgent(['--probe-interval', '5s', '--sweep-interval', '60m']);
      await agent.waitReady(120_000);
    }
    const lxcfs = node.lxcfsPid();
    const argv = readFileSync(`/proc/${lxcfs}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (argv.includes('-l') !== loadavg) throw new Error(`lxcfs runs as ${argv.join(' ')}`);
    // Every container reads /proc/loadavg once (after the first sweep has repaired its mounts), so lxcfs tracks all of them.
    await inBatches(containers, (c) =>
      waitUntil(
        `${c.spec.name} reads /proc/loadavg`,
        async () => (await c.read('/proc/loadavg', 5000)).code === 0,
        { timeoutMs: 30_000, intervalMs: 200 },
      ),
    );
    const sample = (await containers[0]!.read('/proc/loadavg')).stdout.trim();
    const before = cpuMs(lxcfs);
    await sleep(WINDOW_MS);
    const used = cpuMs(lxcfs) - before;
    figures.push(
      `lxcfs ${version} ${loadavg ? 'with -l   ' : 'without -l'}: ${(used / 1000).toFixed(2)} s CPU per minute ` +
        `(${((used / WINDOW_MS) * 100).toFixed(1)} % of a core), ${CONTAINERS} containers x ${TASKS} tasks; a container reads "${sample}"`,
    );
    console.log(figures.at(-1));
  }
  console.log(`\n${figures.join('\n')}`);
} finally {
  await node.cleanup();
}
