// Benchmark of `lxcfs-webhook serve` against the floor the platform leaves it: a bare Node.js HTTPS
// server (bench/support/floor-server.ts) with the same TLS setup, body and response size. Both run as
// their own processes, pinned to one CPU, answering a real v1 pod CREATE review over loopback HTTPS on
// keep-alive connections, driven from this process (pinned to another CPU when there is one). For each
// runtime (this Node.js and Node 24 through `npx -y node@24`):
//   1. throughput: a fixed number of connections, each sending its next review as soon as the last is
//      answered; rounds alternate between serve and the floor so a busy moment on the machine hits both;
//   2. latency of both at half of serve's peak rate, open loop: reviews are due at fixed times and a late
//      answer counts from when its review was due, so a stall is not hidden by sending less (coordinated
//      omission);
//   3. peak RSS of both (VmHWM), read before they are stopped.
// The load generator speaks HTTP/1.1 on raw TLS sockets: Node's HTTP client would cost more CPU than
// the server it measures. HTTP/1.1 is also all the API server speaks to webhooks: its webhook client
// offers only "http/1.1" in ALPN (k8s.io/apiserver/pkg/util/webhook/client.go, since Kubernetes 1.16),
// so HTTP/2 is not served and not measured.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCA, issueServingCert } from '../src/certs/authority.js';
import { WEBHOOK_NODE_FLAGS } from '../src/config/defaults.js';

const AIM = { floorShare: 0.85, p99Ms: 5, rssMb: 100 };
const CONNECTIONS = 8;
const ROUNDS = 3;
const WARM_UP_MS = 1_500;
const THROUGHPUT_MS = 5_000;
const LATENCY_MS = 8_000;
/** Open-loop phase: enough connections that a review never waits for a free one at half rate. */
const LATENCY_CONNECTIONS = 32;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const floorServer = join(root, 'dist', 'bench', 'support', 'floor-server.js');
const reviewFile = join(
  root,
  'test',
  'fixtures',
  'peers',
  'ymping-admissionreview-v1-pod-create.json',
);
const review = readFileSync(reviewFile);
const request = Buffer.concat([
  Buffer.from(
    `POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${review.length}\r\n\r\n`,
  ),
  review,
]);

/** Both servers run with the production node flags, plus any given to profile them: BENCH_SERVER_NODE_ARGS='--cpu-prof'. */
const serverNodeArgs = [
  ...WEBHOOK_NODE_FLAGS,
  ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== ''),
];
const canPin = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** One keep-alive connection: one request in flight at a time, responses framed by Content-Length. */
class Connection {
  private received: Buffer = Buffer.alloc(0);
  private waiting:
    | {
        resolve: (response: { status: number; body: Buffer }) => void;
        reject: (err: Error) => void;
      }
    | undefined;
  /** Closed by us, or by the server while idle (its keep-alive timeout): no longer usable. */
  closed = false;

  private constructor(private readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    // A server that closes a connection with a review in flight fails the run instead of hanging it.
    socket.on('close', () =>
      this.fail(
        new Error(
          `the server closed a connection${this.waiting ? ' with a review in flight' : ''}`,
        ),
      ),
    );
  }

  static open({ port, ca }: Server): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () =>
        resolve(new Connection(socket)),
      );
      socket.once('error', reject);
    });
  }

  send(): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  private onData(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    const headEnd = this.received.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.received.subarray(0, headEnd).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
    const end = headEnd + 4 + length;
    if (this.received.length < end) return;
    const body = this.received.subarray(headEnd + 4, end);
    this.received = this.received.subarray(end);
    const waiting = this.waiting!;
    this.waiting = undefined;
    waiting.resolve({ status: Number(head.slice(9, 12)), body });
  }

  private fail(err: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting && !this.closed) waiting.reject(err);
    this.closed = true;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

interface Server {
  child: ChildProcess;
  port: number;
  ca: string;
}

/** A Node.js to run the servers with: its binary and version. */
interface Runtime {
  node: string;
  version: string;
}

/** Certificate files, like production (a Secret) rather than the in-memory try-it-out certificate. */
interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

async function writeTlsFiles(dir: string): Promise<TlsFiles> {
  const ca = await createCA({ commonName: 'bench CA', validDays: 1 });
  const pair = await issueServingCert(ca, ['localhost', '127.0.0.1'], { validDays: 1 });
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: ca.certPem };
  writeFileSync(files.cert, pair.certPem);
  writeFileSync(files.key, pair.keyPem);
  return files;
}

/** Servers still running: stopped at exit, even when the benchmark fails. */
const liveServers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveServers) child.kill('SIGTERM');
});

/** Starts a server script pinned to CPU 0; resolves once it logs "serving" with its port. */
async function startServer(
  runtime: Runtime,
  script: string,
  args: readonly string[],
  tls: TlsFiles,
): Promise<Server> {
  const argv = [...serverNodeArgs, script, ...args];
  // serve logs one line per review, as in production.
  const options: SpawnOptions = {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'info' },
  };
  const child = canPin
    ? spawn('taskset', ['-c', '0', runtime.node, ...argv], options)
    : spawn(runtime.node, argv, options);
  liveServers.add(child);
  child.on('exit', () => liveServers.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const record = line.startsWith('{')
        ? (JSON.parse(line) as { msg: string; port?: number })
        : undefined;
      if (record?.msg !== 'serving') return;
      resolve(record.port!);
      // From now on the log lines are read and dropped, as a container runtime would read them.
      lines.close();
      child.stdout!.resume();
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('exit', (code) =>
      reject(new Error(`${script} exited with ${code} before serving: ${stderr}`)),
    );
  });
  return { child, port, ca: tls.ca };
}

const startServe = (runtime: Runtime, tls: TlsFiles): Promise<Server> =>
  startServer(
    runtime,
    cli,
    [
      'serve',
      '--address',
      '127.0.0.1',
      '--port',
      '0',
      '--health-port',
      '0',
      '--shutdown-grace',
      '0',
      '--tls-cert',
      tls.cert,
      '--tls-key',
      tls.key,
      '--tls-server-name',
      'localhost',
    ],
    tls,
  );

const startFloor = (runtime: Runtime, tls: TlsFiles, responseFile: string): Promise<Server> =>
  startServer(runtime, floorServer, [tls.cert, tls.key, responseFile], tls);

/** The response `serve` gives to the review: the floor answers with the same bytes. */
async function serveResponse(server: Server): Promise<Buffer> {
  const connection = await Connection.open(server);
  try {
    const response = await connection.send();
    check(response);
    const answer = JSON.parse(response.body.toString()) as {
      response: { allowed: boolean; patch?: string };
    };
    if (!answer.response.allowed || !answer.response.patch)
      throw new Error('the review was not answered with a patch');
    return response.body;
  } finally {
    connection.close();
  }
}

function procStatus(pid: number, field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a process so far (Linux). */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Busy and stolen (taken by the hypervisor) CPU time of the whole machine so far, in ticks (Linux). */
function machineTicks(): { total: number; steal: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
  } catch {
    return undefined;
  }
}

function check(response: { status: number; body: Buffer }): void {
  if (response.status !== 200)
    throw new Error(`review answered ${response.status}: ${response.body.toString()}`);
}

/** Closed loop: every connection sends again as soon as it is answered. Returns answers per second. */
async function measureThroughput(
  server: Server,
): Promise<{ perSecond: number; serverCpu?: number; clientCpu: number }> {
  const pid = server.child.pid!;
  const connections = await Promise.all(
    Array.from({ length: CONNECTIONS }, () => Connection.open(server)),
  );
  let counting = false;
  let count = 0;
  let running = true;
  const loops = connections.map(async (connection) => {
    while (running) {
      check(await connection.send());
      if (counting) count++;
    }
  });
  await sleep(WARM_UP_MS);
  const cpuBefore = cpuSeconds(pid);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  counting = true;
  await sleep(THROUGHPUT_MS);
  counting = false;
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = cpuSeconds(pid);
  const client = process.cpuUsage(clientBefore);
  running = false;
  await Promise.all(loops);
  for (const connection of connections) connection.close();
  const serverCpu =
    cpuBefore !== undefined && cpuAfter !== undefined
      ? (cpuAfter - cpuBefore) / elapsed
      : undefined;
  return {
    perSecond: count / elapsed,
    serverCpu,
    clientCpu: (client.user + client.system) / 1e6 / elapsed,
  };
}

/** Open loop at `rate` reviews/s; each latency counts from when its review was due. */
async function measureLatency(server: Server, rate: number): Promise<number[]> {
  const idle = await Promise.all(
    Array.from({ length: LATENCY_CONNECTIONS }, () => Connection.open(server)),
  );
  const latencies: number[] = [];
  const queue: number[] = [];
  let inFlight = 0;
  const dispatch = () => {
    while (queue.length > 0 && idle.length > 0) {
      // Oldest idle first, so no connection idles into the server's keep-alive timeout.
      const connection = idle.shift()!;
      if (connection.closed) continue;
      const due = queue.shift()!;
      inFlight++;
      void connection.send().then((response) => {
        check(response);
        latencies.push(performance.now() - due);
        inFlight--;
        idle.push(connection);
        dispatch();
      });
    }
  };
  const started = performance.now();
  const interval = 1000 / rate;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      if (now - started >= LATENCY_MS) return resolve();
      while (started + sent * interval <= now) queue.push(started + sent++ * interval);
      dispatch();
      setImmediate(tick);
    };
    tick();
  });
  while (inFlight > 0 || queue.length > 0) await sleep(10);
  for (const connection of idle) connection.close();
  return latencies.sort((a, b) => a - b);
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const percent = (share: number) => `${fmt(share * 100)}%`;

/** This Node.js, and Node 24 (the image's runtime) when npx can fetch it. */
function runtimes(): Runtime[] {
  const found: Runtime[] = [{ node: process.execPath, version: process.version }];
  if (process.versions.node.startsWith('24.')) return found;
  const npx = spawnSync(
    'npx',
    ['-y', 'node@24', '-p', 'process.execPath + " " + process.version'],
    { encoding: 'utf8' },
  );
  const [node, version] = npx.stdout.trim().split(' ');
  if (npx.status === 0 && node && version) found.push({ node, version });
  else
    console.log(
      `  Node 24 is not measured: "npx -y node@24" failed (${npx.stderr.trim().split('\n').at(-1)})`,
    );
  return found;
}

interface Figures {
  throughputs: number[];
  serverCpu: number[];
  clientCpu: number[];
  latencies: number[];
  peakRss?: number;
}

function latencyLine(latencies: number[]): string {
  const p99 = percentile(latencies, 99);
  return (
    `p50 ${fmt(percentile(latencies, 50), 2)} ms, p99 ${fmt(p99, 2)} ms, p99.9 ${fmt(percentile(latencies, 99.9), 2)} ms, ` +
    `max ${fmt(latencies.at(-1)!, 2)} ms over ${fmt(latencies.length)} reviews`
  );
}

/** Both servers on one runtime: throughput rounds alternating, then latency of both at half of serve's peak. */
async function measureRuntime(runtime: Runtime, tls: TlsFiles, dir: string): Promise<void> {
  const serve = await startServe(runtime, tls);
  const responseFile = join(dir, 'response.json');
  writeFileSync(responseFile, await serveResponse(serve));
  const floor = await startFloor(runtime, tls, responseFile).catch((err: unknown) => {
    serve.child.kill('SIGTERM');
    throw err;
  });
  const servers = { serve, floor };
  const figures = {
    serve: { throughputs: [], serverCpu: [], clientCpu: [], latencies: [] },
    floor: { throughputs: [], serverCpu: [], clientCpu: [], latencies: [] },
  } as Record<'serve' | 'floor', Figures>;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of ['serve', 'floor'] as const) {
        const result = await measureThroughput(servers[name]);
        figures[name].throughputs.push(result.perSecond);
        if (result.serverCpu !== undefined) figures[name].serverCpu.push(result.serverCpu);
        figures[name].clientCpu.push(result.clientCpu);
      }
    }
    const rate = Math.floor(median(figures.serve.throughputs) / 2);
    for (const name of ['serve', 'floor'] as const) {
      figures[name].latencies = await measureLatency(servers[name], rate);
      figures[name].peakRss = procStatus(servers[name].child.pid!, 'VmHWM');
    }

    const serveRate = median(figures.serve.throughputs);
    const floorRate = median(figures.floor.throughputs);
    const share = serveRate / floorRate;
    console.log(`node ${runtime.version}`);
    for (const name of ['serve', 'floor'] as const) {
      const f = figures[name];
      const cpu =
        f.serverCpu.length > 0 ? `server CPU ${f.serverCpu.map(percent).join(' / ')}, ` : '';
      console.log(
        `  ${name.padEnd(5)} throughput: ${f.throughputs.map((t) => fmt(t)).join(' / ')} reviews/s (median ${fmt(median(f.throughputs))}; ` +
          `${cpu}load generator CPU ${f.clientCpu.map(percent).join(' / ')})`,
      );
    }
    console.log(
      `  serve/floor: ${percent(share)} of the floor's throughput  (aim >= ${percent(AIM.floorShare)}: ${verdict(share >= AIM.floorShare)})`,
    );
    // CPU per review does not depend on how much of its CPU the server got: the steadier figure on a busy machine.
    const cpuPerReview = (f: Figures) =>
      median(f.serverCpu.map((cpu, i) => (cpu / f.throughputs[i]!) * 1e6));
    if (figures.serve.serverCpu.length === ROUNDS && figures.floor.serverCpu.length === ROUNDS) {
      const serveCpu = cpuPerReview(figures.serve);
      const floorCpu = cpuPerReview(figures.floor);
      console.log(
        `  CPU per review (median): serve ${fmt(serveCpu)} µs, floor ${fmt(floorCpu)} µs: serve costs ${fmt(serveCpu / floorCpu, 2)}× the floor`,
      );
    }
    console.log(`  latency at ${fmt(rate)} reviews/s (half of serve's peak), open loop:`);
    for (const name of ['serve', 'floor'] as const) {
      const p99 = percentile(figures[name].latencies, 99);
      const aim =
        name === 'serve' ? `  (aim p99 <= ${AIM.p99Ms} ms: ${verdict(p99 <= AIM.p99Ms)})` : '';
      console.log(`    ${name.padEnd(5)} ${latencyLine(figures[name].latencies)}${aim}`);
    }
    const rss = (name: 'serve' | 'floor') => {
      const peak = figures[name].peakRss;
      return peak === undefined ? 'not measurable (no /proc)' : `${fmt(peak / 1024 / 1024, 1)} MiB`;
    };
    const servePeak = figures.serve.peakRss;
    console.log(
      `  peak RSS: serve ${rss('serve')}, floor ${rss('floor')}` +
        (servePeak === undefined
          ? ''
          : `  (aim serve <= ${AIM.rssMb} MB: ${verdict(servePeak <= AIM.rssMb * 1e6)})`),
    );
  } finally {
    serve.child.kill('SIGTERM');
    floor.child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  if (canPin)
    spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-bench-'));
  try {
    console.log(
      `webhook: serve against the floor (a bare Node.js HTTPS server: same TLS, body and response size)`,
    );
    console.log(
      `  POST /mutate over loopback HTTPS with keep-alive, a real v1 pod CREATE review (${fmt(review.length / 1024, 1)} KiB)`,
    );
    console.log(
      `  servers: node ${serverNodeArgs.join(' ')}; ${ROUNDS} alternating throughput rounds of ${THROUGHPUT_MS / 1000} s on ${CONNECTIONS} connections each`,
    );
    console.log(
      canPin
        ? '  servers pinned to CPU 0, load generator to CPU 1'
        : '  servers and load generator share the CPUs (taskset or a second CPU is missing): figures are pessimistic',
    );
    // Other work on the machine takes CPU from the pinned servers too: say how busy it was.
    console.log(
      `  machine load average before the run: ${fmt(loadavg()[0]!, 2)} (${cpus().length} CPUs)`,
    );
    const tls = await writeTlsFiles(dir);
    const ticksBefore = machineTicks();
    for (const runtime of runtimes()) await measureRuntime(runtime, tls, dir);
    const ticksAfter = machineTicks();
    if (ticksBefore && ticksAfter && ticksAfter.total > ticksBefore.total) {
      // On a virtual machine the host may run other guests on our CPUs: that time is lost to every phase.
      const steal = (ticksAfter.steal - ticksBefore.steal) / (ticksAfter.total - ticksBefore.total);
      console.log(`  CPU time stolen by the hypervisor during the run: ${fmt(steal * 100, 1)}%`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
