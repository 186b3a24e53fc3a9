// The admission harness (main.go beside this file): the API server's own admission chain from Debian's
// k8s.io/apiserver 0.36, built once in a Debian sid chroot by scripts/admission-harness/build-harness.sh
// and cached by a hash of its inputs under /var/cache/lxcfs-webhook-admission-harness (a fresh clone
// on this machine reuses it; CI builds it itself). This module builds or finds it and runs scenarios.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';
import type { Pod } from '../../src/inject/pod.js';
import type { K8sObject } from '../deploy/render.js';
import { repoRoot } from '../helpers/paths.js';

/** A cold build (chroot ~2 min, the API server's packages ~3-5 min on a loaded 2-core machine) fits in this. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

let built: string | undefined;

/** The harness binary, building the chroot and the program when no cached build matches their inputs. */
export function harnessPath(): string {
  if (built) return built;
  const script = join(repoRoot, 'scripts', 'admission-harness', 'build-harness.sh');
  try {
    built = execFileSync('bash', [script], {
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
  } catch (err) {
    throw new Error(
      `building the admission harness failed (it needs root for mmdebstrap and chroot, and scripts/setup-system.sh run): ${(err as Error).message}`,
      { cause: err },
    );
  }
  return built;
}

/**
 * A `check(t, name, fn)` that runs one case as its own subtest and counts it; once the file's tests are
 * done, the count is printed as `admission harness, <part>: N cases passed, M failed`.
 */
export function talliedCases(
  part: string,
): (t: TestContext, name: string, fn: () => void | Promise<void>) => Promise<void> {
  const tally = { passed: 0, failed: 0 };
  after(() =>
    console.log(`admission harness, ${part}: ${tally.passed} cases passed, ${tally.failed} failed`),
  );
  return async (t, name, fn) => {
    await t.test(name, async () => {
      try {
        await fn();
        tally.passed++;
      } catch (err) {
        tally.failed++;
        throw err;
      }
    });
  };
}

export interface AdmissionCase {
  name: string;
  namespace: string;
  operation?: 'CREATE' | 'UPDATE';
  /** `ephemeralcontainers` for kubectl debug (with operation UPDATE and oldObject). */
  subresource?: string;
  object: Pod;
  oldObject?: Pod;
  dryRun?: boolean;
}

export interface Scenario {
  /** Namespaces, MutatingWebhookConfigurations, MutatingAdmissionPolicies and their bindings. */
  objects: object[];
  /** `namespace/name:port` of a Service → the address its endpoints answer on; "" for none. */
  services?: Record<string, string>;
  cases?: AdmissionCase[];
  /** Pods to round-trip through corev1.Pod. */
  decode?: Pod[];
}

export interface AdmissionResult {
  name: string;
  allowed: boolean;
  error?: string;
  code?: number;
  /** The mutated object, as the chain decoded it into a typed corev1.Pod. */
  object?: Pod;
  warnings: string[];
  /** Audit annotations: `mutation.webhook.admission.k8s.io/round_R_index_I` → {configuration, webhook, mutated}. */
  annotations: Record<string, string>;
}

export interface HarnessOutput {
  results: AdmissionResult[];
  decoded: Pod[];
}

/** Runs one scenario (asynchronously: webhooks the test serves in this process must keep answering). */
export function runHarness(scenario: Scenario): Promise<HarnessOutput> {
  const child = spawn(harnessPath(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin.end(JSON.stringify({ cases: [], decode: [], services: {}, ...scenario }));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0)
        reject(
          new Error(
            `admission harness exited ${code}: ${stderr.trim().split('\n').slice(-5).join('\n')}`,
          ),
        );
      else resolve(JSON.parse(stdout) as HarnessOutput);
    });
  });
}

/** A Namespace as the API server stores it: it always labels it with its own name (Kubernetes >= 1.22). */
export function namespace(name: string, labels: Record<string, string> = {}): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
  };
}

export interface WebhookCall {
  configuration: string;
  webhook: string;
  mutated: boolean;
  round: number;
}

/** The webhooks the chain called for one request, in order, from its audit annotations. */
export function webhookCalls(result: AdmissionResult): WebhookCall[] {
  return Object.entries(result.annotations)
    .flatMap(([key, value]) => {
      const match = /^mutation\.webhook\.admission\.k8s\.io\/round_(\d+)_index_(\d+)$/.exec(key);
      if (!match) return [];
      const { configuration, webhook, mutated } = JSON.parse(value) as WebhookCall;
      return [
        { configuration, webhook, mutated, round: Number(match[1]), index: Number(match[2]) },
      ];
    })
    .sort((a, b) => a.round - b.round || a.index - b.index)
    .map(({ configuration, webhook, mutated, round }) => ({
      configuration,
      webhook,
      mutated,
      round,
    }));
}
