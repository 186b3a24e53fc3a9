// Benchmark of `lxcfs-webhook serve`: the real CLI in its own process, pinned to one CPU, answering a
// real v1 pod CREATE review over loopback HTTPS on keep-alive connections, driven from this process
// (pinned to another CPU when there is one).
//   1. throughput: a fixed number of connections, each sending its next review as soon as the last is
//      answered, for a few seconds after a warm-up: reviews/s;
//   2. latency at half that rate, open loop: reviews are due at fixed times and a late answer counts
//      from when its review was due, so a stall is not hidden by sending less (coordinated omission);
//   3. peak RSS of the server (VmHWM), read before it is stopped.
// The load generator speaks HTTP/1.1 on raw TLS sockets: Node's HTTP client would cost more CPU than
// the server it measures.
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

const AIM = { reviewsPerSecond: 3_000, p99Ms: 5, rssMb: 100 };
const CONNECTIONS = 8;
const WARM_UP_MS = 2_000;
const THROUGHPUT_MS = 10_000;
const LATENCY_MS = 10_000;
/** Open-loop phase: enough connections that a review never waits for a free one at half rate. */
const LATENCY_CONNECTIONS = 32;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const reviewFile = join(root, 'test', 'fixtures', 'peers', 'ymping-admissionreview-v1-pod-create.json');
const review = readFileSync(reviewFile);
const request = Buffer.concat([
  Buffer.from(`POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${review.length}\r\n\r\n`),
  review,
]);

/** The server runs with the production node flags, plus any given to profile it: BENCH_SERVER_NODE_ARGS='--cpu-prof'. */
const serverNodeArgs = [...WEBHOOK_NODE_FLAGS, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '')];
const canPin = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** One keep-alive connection: one request in flight at a time, responses framed by Content-Length. */
class Connection {
  private received: Buffer = Buffer.alloc(0);
  private waiting: ((status: number, body: Buffer) => void) | undefined;

  private constructor(private readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => { throw err; });
  }

  static open({ port, ca }: Server): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  send(): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve) => {
      this.waiting = (status, body) => resolve({ status, body });
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
    const done = this.waiting!;
    this.waiting = undefined;
    done(Number(head.slice(9, 12)), body);
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Server {
  child: ChildProcess;
  port: number;
  ca: string;
}

/** Like production: certificate files (a Secret) rather than the in-memory try-it-out certificate. */
async function startServer(dir: string): Promise<Server> {
  const ca = await createCA({ commonName: 'bench CA', validDays: 1 });
  const pair = await issueServingCert(ca, ['localhost', '127.0.0.1'], { validDays: 1 });
  writeFileSync(join(dir, 'tls.crt'), pair.certPem);
  writeFileSync(join(dir, 'tls.key'), pair.keyPem);
  const args = [...serverNodeArgs, cli, 'serve', '--address', '127.0.0.1', '--port', '0', '--health-port', '0', '--shutdown-grace', '0',
    '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')];
  // One log line per review, as in production.
  const options: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } };
  const child = canPin ? spawn('taskset', ['-c', '0', process.execPath, ...args], options) : spawn(process.execPath, args, options);
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const record = line.startsWith('{') ? JSON.parse(line) as { msg: string; port?: number } : undefined;
      if (record?.msg !== 'serving') return;
      resolve(record.port!);
      // From now on the review log lines are read and dropped, as a container runtime would read them.
      lines.close();
      child.stdout!.resume();
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code} before serving: ${stderr}`)));
  });
  return { child, port, ca: ca.certPem };
}

function procStatus(pid: number, field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
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
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
  } catch {
    return undefined;
  }
}

function check(response: { status: number; body: Buffer }): void {
  if (response.status !== 200) throw new Error(`review answered ${response.status}: ${response.body.toString()}`);
}

/** Closed loop: every connection sends again as soon as it is answered. Returns answers per second. */
async function measureThroughput(server: Server): Promise<{ perSecond: number; serverCpu?: number; clientCpu: number }> {
  const pid = server.child.pid!;
  const connections = await Promise.all(Array.from({ length: CONNECTIONS }, () => Connection.open(server)));
  const first = await connections[0]!.send();
  check(first);
  const answer = JSON.parse(first.body.toString()) as { response: { allowed: boolean; patch?: string } };
  if (!answer.response.allowed || !answer.response.patch) throw new Error('the review was not answered with a patch');

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
  const serverCpu = cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / elapsed : undefined;
  return { perSecond: count / elapsed, serverCpu, clientCpu: (client.user + client.system) / 1e6 / elapsed };
}

/** Open loop at `rate` reviews/s; each latency counts from when its review was due. */
async function measureLatency(server: Server, rate: number): Promise<number[]> {
  const idle = await Promise.all(Array.from({ length: LATENCY_CONNECTIONS }, () => Connection.open(server)));
  const latencies: number[] = [];
  const queue: number[] = [];
  let inFlight = 0;
  const dispatch = () => {
    while (queue.length > 0 && idle.length > 0) {
      const due = queue.shift()!;
      const connection = idle.pop()!;
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

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  if (canPin) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-bench-'));
  const server = await startServer(dir);
  const pid = server.child.pid!;
  try {
    console.log(`webhook: POST /mutate over loopback HTTPS with keep-alive, a real v1 pod CREATE review (${fmt(review.length / 1024, 1)} KiB), node ${process.version}`);
    console.log(`  server: node ${serverNodeArgs.join(' ')} lxcfs-webhook serve --tls-cert ... --tls-key ...`);
    console.log(canPin
      ? '  server pinned to CPU 0, load generator to CPU 1'
      : '  server and load generator share the CPUs (taskset or a second CPU is missing): figures are pessimistic');
    // Other work on the machine takes CPU from the pinned server too: say how busy it was.
    console.log(`  machine load average before the run: ${fmt(loadavg()[0]!, 2)} (${cpus().length} CPUs)`);

    const ticksBefore = machineTicks();
    const throughput = await measureThroughput(server);
    const cpu = (throughput.serverCpu === undefined ? '' : `, server CPU ${fmt(throughput.serverCpu * 100)}%`) +
      `, load generator CPU ${fmt(throughput.clientCpu * 100)}%`;
    console.log(`  throughput: ${fmt(throughput.perSecond)} reviews/s on ${CONNECTIONS} connections${cpu}` +
      `  (aim >= ${fmt(AIM.reviewsPerSecond)}: ${verdict(throughput.perSecond >= AIM.reviewsPerSecond)})`);

    const rate = Math.floor(throughput.perSecond / 2);
    const latencies = await measureLatency(server, rate);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    console.log(`  latency at ${fmt(rate)} reviews/s (half of that): p50 ${fmt(p50, 2)} ms, p99 ${fmt(p99, 2)} ms, ` +
      `p99.9 ${fmt(percentile(latencies, 99.9), 2)} ms, max ${fmt(latencies.at(-1)!, 2)} ms over ${fmt(latencies.length)} reviews` +
      `  (aim p99 <= ${AIM.p99Ms} ms: ${verdict(p99 <= AIM.p99Ms)})`);

    const ticksAfter = machineTicks();
    if (ticksBefore && ticksAfter && ticksAfter.total > ticksBefore.total) {
      // On a virtual machine the host may run other guests on our CPUs: that time is lost to both phases.
      const steal = (ticksAfter.steal - ticksBefore.steal) / (ticksAfter.total - ticksBefore.total);
      console.log(`  CPU time stolen by the hypervisor during the run: ${fmt(steal * 100, 1)}%`);
    }
    const peak = procStatus(pid, 'VmHWM');
    console.log(peak === undefined
      ? '  peak RSS of the server: not measurable here (no /proc)'
      : `  peak RSS of the server: ${fmt(peak / 1024 / 1024, 1)} MiB  (aim <= ${AIM.rssMb} MB: ${verdict(peak <= AIM.rssMb * 1e6)})`);
  } finally {
    server.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
