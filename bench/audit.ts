// Benchmark of `lxcfs-webhook audit` on 10,000 pods: the kubectl-made pods of test/fixtures/audit
// (every finding, injected and unselected pods) copied into 100 namespaces of 100 pods each, written
// as one `kubectl get namespaces,pods,replicasets -A -o json` List. Measured:
//   1. in process: parse + audit + table, median and slowest of several runs after a warm-up;
//   2. the real CLI end to end (node start-up included), as `kubectl lxcfs audit -f FILE` runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { audit } from '../src/audit/audit.js';
import { addDocument, checkComplete, emptyInput } from '../src/audit/input.js';
import { renderTable } from '../src/audit/report.js';
import { defaultSettings } from '../src/inject/settings.js';

const PODS = 10_000;
const NAMESPACES = 100;
const RUNS = 7;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

interface Item {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ name: string }>;
  };
}

/** 10,000 pods in 100 namespaces, half enabled and half required, from the fixture's selected pods. */
function bigList(): string {
  const fixture = JSON.parse(
    readFileSync(join(root, 'test', 'fixtures', 'audit', 'cluster.json'), 'utf8'),
  ) as { items: Item[] };
  const templates = fixture.items.filter(
    (o) => o.kind === 'Pod' && ['shop', 'bank', 'peers', 'plain'].includes(o.metadata.namespace!),
  );
  const replicaSets = fixture.items.filter((o) => o.kind === 'ReplicaSet');
  const items: unknown[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    const ns = `team-${n}`;
    items.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ns,
        labels: { 'lxcfs-admission-webhook': n % 2 === 0 ? 'enabled' : 'required' },
      },
    });
    for (const rs of replicaSets)
      items.push({ ...rs, metadata: { ...rs.metadata, namespace: ns } });
    for (let i = 0; i < PODS / NAMESPACES; i++) {
      const pod = structuredClone(templates[i % templates.length]!);
      pod.metadata = { ...pod.metadata, name: `${pod.metadata.name}-${i}`, namespace: ns };
      items.push(pod);
    }
  }
  return JSON.stringify(
    { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items },
    null,
    4,
  );
}

function auditOnce(text: string): { ms: number; affected: number } {
  const start = performance.now();
  const input = emptyInput();
  addDocument(input, 'bench', text);
  checkComplete(input);
  const report = audit(input, defaultSettings);
  renderTable(report, defaultSettings.lxcfsRoot);
  return { ms: performance.now() - start, affected: report.summary.affected };
}

const text = bigList();
console.log(
  `input: ${PODS} pods in ${NAMESPACES} namespaces, ${(text.length / 1024 / 1024).toFixed(1)} MiB of JSON`,
);
auditOnce(text); // warm-up
const runs = Array.from({ length: RUNS }, () => auditOnce(text));
const times = runs.map((r) => r.ms).sort((a, b) => a - b);
console.log(
  `in process (parse + audit + table), ${RUNS} runs: median ${times[RUNS >> 1]!.toFixed(0)} ms, slowest ${times[RUNS - 1]!.toFixed(0)} ms; ${runs[0]!.affected} pods affected`,
);

const dir = mkdtempSync(join(tmpdir(), 'audit-bench-'));
try {
  const file = join(dir, 'cluster.json');
  writeFileSync(file, text);
  const start = performance.now();
  const run = spawnSync(process.execPath, [cli, 'audit', '-f', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - start;
  if (run.status !== 1) throw new Error(`audit exited ${run.status}: ${run.stderr}`);
  console.log(
    `CLI end to end (lxcfs-webhook audit -f FILE, node start-up included): ${ms.toFixed(0)} ms, ${run.stdout.split('\n').length} lines of output`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
