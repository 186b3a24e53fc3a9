// The pods every admission path is checked on: ours (test/fixtures/pods) and the ones other injectors'
// repositories recorded (test/fixtures/peers: a real AdmissionReview's pod, their unit-test pods, the
// pods of their example Deployments, and pods carrying their injected volumes), plus what `inject`
// makes of each, for the comparison with the API server's result.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Pod, Volume, VolumeMount } from '../../src/inject/pod.js';
import { fixturePath, readJsonFixture } from '../helpers/paths.js';
import { runCli } from '../helpers/run-cli.js';

export interface NamedPod {
  name: string;
  pod: Pod;
}

function deploymentPod(file: string): Pod {
  const deployment = parse(readFileSync(fixturePath('peers', file), 'utf8')) as {
    metadata: { name: string };
    spec: { template: Pod };
  };
  const { metadata, spec } = deployment.spec.template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...metadata, generateName: `${deployment.metadata.name}-` },
    spec,
  };
}

/** Our app-with-sidecars pod, already injected by another injector (their volumes and mounts). */
function withPeerVolumes(file: string): Pod {
  const peer = readJsonFixture<{ volumes: Volume[]; volumeMountsPerContainer: VolumeMount[] }>(
    'peers',
    file,
  );
  const pod = readJsonFixture<Pod>('pods', 'app-with-sidecars.json');
  pod.spec!.volumes = [...(pod.spec!.volumes ?? []), ...peer.volumes];
  pod.spec!.containers![0]!.volumeMounts = [
    ...(pod.spec!.containers![0]!.volumeMounts ?? []),
    ...peer.volumeMountsPerContainer,
  ];
  return pod;
}

export function goldenPods(): NamedPod[] {
  const ours = readdirSync(fixturePath('pods'))
    .filter((n) => n.endsWith('.json'))
    .sort()
    .map((name) => ({ name, pod: readJsonFixture<Pod>('pods', name) }));
  const review = readJsonFixture<{ request: { object: Pod } }>(
    'peers',
    'ymping-admissionreview-v1-pod-create.json',
  );
  const peers: NamedPod[] = [
    { name: 'peers/ymping-admissionreview-v1-pod-create.json', pod: review.request.object },
    ...['kubeservice-unittest-pod-1.json', 'kubeservice-unittest-pod-2.json'].map((n) => ({
      name: `peers/${n}`,
      pod: readJsonFixture<Pod>('peers', n),
    })),
    ...readdirSync(fixturePath('peers'))
      .filter((n) => n.endsWith('-deployment.yaml'))
      .sort()
      .map((n) => ({ name: `peers/${n}`, pod: deploymentPod(n) })),
    ...['kubeservice-injected-volumes.json', 'cndoit18-injected-volumes.json'].map((n) => ({
      name: `peers/${n}`,
      pod: withPeerVolumes(n),
    })),
  ];
  return [...ours, ...peers];
}

export interface Injected {
  pod: Pod;
  warnings: string[];
}

/** `lxcfs-webhook inject -o json` on every pod at once (one List), with the warnings it prints per pod. */
export async function throughInject(pods: NamedPod[], flags: string[] = []): Promise<Injected[]> {
  const dir = mkdtempSync(join(tmpdir(), 'harness-inject-'));
  try {
    const file = join(dir, 'pods.json');
    writeFileSync(
      file,
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods.map((p) => p.pod) }),
    );
    const result = await runCli(['inject', '-o', 'json', '-f', file, ...flags]);
    if (result.code !== 0) throw new Error(`inject failed: ${result.stderr}`);
    const items = (JSON.parse(result.stdout) as { items: Pod[] }).items;
    // stderr: `<object>: <summary>` then `<object>: warning: <text>` lines, objects in order.
    const warnings: string[][] = [];
    for (const line of result.stderr.split('\n').filter((l) => l !== '')) {
      const warning = /^.*?: warning: (.*)$/.exec(line);
      if (warning) warnings[warnings.length - 1]!.push(warning[1]!);
      else warnings.push([]);
    }
    if (warnings.length !== items.length)
      throw new Error(
        `inject reported ${warnings.length} objects for ${items.length} pods:\n${result.stderr}`,
      );
    return items.map((pod, i) => ({ pod, warnings: warnings[i]! }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** True when the pod mounts lxcfs files from `root` (any container). */
export function hasLxcfsVolumes(pod: Pod | undefined, root = '/var/lib/lxcfs'): boolean {
  return (pod?.spec?.volumes ?? []).some(
    (v) => v.hostPath?.path?.startsWith(`${root}/`) && v.name?.startsWith('lxcfs-'),
  );
}
