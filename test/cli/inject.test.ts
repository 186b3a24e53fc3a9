// `lxcfs-webhook inject` run as users run it: the compiled CLI in a child process. The output is
// checked the way a cluster would check it (schemas, pod rules) and against the input text.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_FILES } from '../../src/config/defaults.js';
import type { Pod, Volume } from '../../src/inject/pod.js';
import { findPods } from '../../src/manifest/workloads.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { fixturePath, repoRoot } from '../helpers/paths.js';
import { assertValidPod } from '../helpers/pod-check.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';

const manifest = (name: string) => fixturePath('manifests', name);
const read = (path: string) => readFileSync(path, 'utf8');

async function inject(args: string[], stdin?: string): Promise<CliResult> {
  const result = await runCli(['inject', ...args], { stdin });
  assert.equal(result.code, 0, `inject ${args.join(' ')} failed: ${result.stderr}`);
  return result;
}

async function failInject(args: string[], stdin?: string): Promise<CliResult> {
  const result = await runCli(['inject', ...args], { stdin });
  assert.equal(
    result.code,
    2,
    `inject ${args.join(' ')} should fail with 2; stderr: ${result.stderr}`,
  );
  assert.equal(result.stdout, '', 'nothing is printed when a file cannot be injected');
  return result;
}

function objectsOf(yaml: string): Array<Record<string, unknown>> {
  return parseAllDocuments(yaml, { version: '1.1' })
    .map((doc) => doc.toJS() as Record<string, unknown>)
    .filter((o) => o != null);
}

/** lxcfs target paths mounted in one container, with their host paths. */
function lxcfsMounts(pod: Pod, containerName: string): Record<string, string> {
  const volumes = new Map((pod.spec?.volumes ?? []).map((v: Volume) => [v.name, v]));
  const container = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
    (c) => c.name === containerName,
  );
  assert.ok(container, `container ${containerName}`);
  const mounts: Record<string, string> = {};
  for (const mount of container.volumeMounts ?? []) {
    const hostPath = volumes.get(mount.name)?.hostPath;
    if (mount.name?.startsWith('lxcfs-') && hostPath?.path) {
      assert.equal(hostPath.type, 'File');
      assert.equal(mount.readOnly, true);
      mounts[mount.mountPath as string] = hostPath.path;
    }
  }
  return mounts;
}

const defaultMounts = Object.fromEntries(
  DEFAULT_FILES.map((file) => [file, `/var/lib/lxcfs${file}`]),
);

/**
 * The pod a controller creates from a template: a StatefulSet adds a volume for each of its
 * volumeClaimTemplates, which the template's mounts may refer to.
 */
function podCreatedFrom(object: Record<string, unknown>, template: Pod): Pod {
  const claims = (
    (object.spec as { volumeClaimTemplates?: Array<{ metadata: { name: string } }> } | undefined)
      ?.volumeClaimTemplates ?? []
  ).map((claim) => ({
    name: claim.metadata.name,
    persistentVolumeClaim: { claimName: claim.metadata.name },
  }));
  if (claims.length === 0) return template;
  return {
    ...template,
    spec: { ...template.spec, volumes: [...(template.spec?.volumes ?? []), ...claims] },
  };
}

/** Every object validates against its Kubernetes schema and every pod passes the API server's checks. */
function assertValidOutput(yaml: string): Array<{ object: Record<string, unknown>; pods: Pod[] }> {
  return objectsOf(yaml).map((object) => {
    const items =
      object.kind === 'List' ? (object.items as Array<Record<string, unknown>>) : [object];
    const pods = items.flatMap((item) => {
      validateObject(item);
      return findPods(item).flatMap((found) => {
        if (found.found !== 'pod') return [];
        assertValidPod(podCreatedFrom(item, found.pod));
        return [found.pod];
      });
    });
    return { object, pods };
  });
}

const stderrLines = (result: CliResult) => result.stderr.trimEnd().split('\n');

describe('lxcfs-webhook inject', () => {
  it('injects every kind with a pod, leaves the rest alone, and says so per object', async () => {
    const result = await inject(['-f', manifest('all-kinds.yaml')]);
    const output = assertValidOutput(result.stdout);
    assert.deepEqual(
      output.map(({ object }) => object.kind),
      [
        'ConfigMap',
        'Pod',
        'Deployment',
        'Service',
        'StatefulSet',
        'DaemonSet',
        'ReplicaSet',
        'ReplicationController',
        'Job',
        'CronJob',
        'PodTemplate',
      ],
    );
    for (const { object, pods } of output) {
      for (const pod of pods) {
        for (const container of pod.spec?.containers ?? []) {
          assert.deepEqual(
            lxcfsMounts(pod, container.name as string),
            defaultMounts,
            `${String(object.kind)} ${container.name}`,
          );
        }
      }
    }
    const storefront = output[2]?.pods[0];
    assert.ok(storefront);
    assert.deepEqual(
      lxcfsMounts(storefront, 'wait-for-db'),
      {},
      'init containers only when asked for',
    );
    assert.deepEqual(stderrLines(result), [
      'configmap/shop-settings (ns shop): skipped: not a workload',
      'pod/toolbox (ns shop): injected 8 files into 1 container',
      'deployment.apps/storefront (ns shop): injected 8 files into 2 containers (8 mounts skipped: init-container)',
      'service/orders-db (ns shop): skipped: not a workload',
      'statefulset.apps/orders-db (ns shop): injected 8 files into 1 container',
      'daemonset.apps/node-exporter (ns monitoring): injected 8 files into 1 container',
      'replicaset.apps/legacy-api (ns shop): injected 8 files into 1 container',
      'replicationcontroller/memcached (ns shop): injected 8 files into 1 container',
      'job.batch/migrate-orders (ns shop): injected 8 files into 1 container',
      'cronjob.batch/nightly-report (ns shop): injected 8 files into 1 container',
      'podtemplate/batch-worker (ns shop): injected 8 files into 1 container',
    ]);
  });

  it('copies objects that are not workloads byte for byte', async () => {
    const input = read(manifest('all-kinds.yaml'));
    const { stdout } = await inject(['-f', manifest('all-kinds.yaml')]);
    const documents = input.split(/^---\n/m);
    for (const kind of ['ConfigMap', 'Service']) {
      const document = documents.find((d) => d.includes(`\nkind: ${kind}\n`));
      assert.ok(document && stdout.includes(document), `${kind} document copied as it was`);
    }
  });

  for (const path of [
    manifest('all-kinds.yaml'),
    manifest('list.json'),
    manifest('commented.yaml'),
    fixturePath('peers', 'ymping-lxcfs-test-deployment.yaml'),
  ]) {
    it(`changes nothing when run on its own output: ${path.slice(repoRoot.length + 1)}`, async () => {
      const first = (await inject(['-f', path])).stdout;
      const second = await inject(['-f', '-'], first);
      assert.equal(second.stdout, first);
      for (const line of stderrLines(second))
        assert.match(line, /: (unchanged: already injected|skipped: not a workload)/);
    });
  }

  it('keeps comments, anchors, quoting and unrelated fields', async () => {
    const input = read(manifest('commented.yaml'));
    const { stdout } = await inject(['-f', manifest('commented.yaml')]);
    for (const comment of input.split('\n').filter((line) => line.trimStart().startsWith('#'))) {
      assert.ok(stdout.includes(comment.trim()), `comment kept: ${comment.trim()}`);
    }
    for (const kept of [
      'labels: &labels',
      'matchLabels: *labels',
      'labels: *labels',
      'value: "on"',
      'image: "nginx:1.27"',
      'defaultMode: 0644',
      'command: ["nginx", "-g", "daemon off;"]',
      'requests: {cpu: 250m, memory: 128Mi}',
      'subPath: nginx.conf',
    ]) {
      assert.ok(stdout.includes(kept), `kept: ${kept}`);
    }
    const configMap = input.slice(0, input.indexOf('---\n') + 4);
    assert.ok(stdout.startsWith(configMap), 'the ConfigMap document is copied as it was');
    const [, deployment] = assertValidOutput(stdout);
    assert.ok(deployment?.pods[0]);
    assert.deepEqual(lxcfsMounts(deployment.pods[0], 'nginx'), defaultMounts);
    assert.equal(
      (deployment.pods[0].spec?.volumes?.[0] as { configMap: { defaultMode: number } }).configMap
        .defaultMode,
      0o644,
    );
  });

  it('reads a JSON List and writes YAML, items in order', async () => {
    const result = await inject(['-f', manifest('list.json')]);
    assert.doesNotMatch(result.stdout, /^\s*[{"]/m, 'block YAML, not JSON');
    const [list] = assertValidOutput(result.stdout);
    const items = list?.object.items as Array<Record<string, unknown>>;
    assert.deepEqual(
      items.map((item) => item.kind),
      ['Deployment', 'Service', 'Job'],
    );
    const input = JSON.parse(read(manifest('list.json'))) as { items: unknown[] };
    assert.deepEqual(items[1], input.items[1], 'the Service is unchanged');
    assert.equal(list?.pods.length, 2);
    assert.deepEqual(stderrLines(result), [
      'deployment.apps/api (ns payments): injected 8 files into 1 container',
      'service/api (ns payments): skipped: not a workload',
      'job.batch/settle (ns payments): injected 8 files into 1 container',
    ]);
  });

  it('reads stdin with -f - exactly as it reads a file', async () => {
    const fromFile = await inject(['-f', manifest('commented.yaml')]);
    const fromStdin = await inject(['-f', '-'], read(manifest('commented.yaml')));
    assert.equal(fromStdin.stdout, fromFile.stdout);
    assert.equal(fromStdin.stderr, fromFile.stderr);
  });

  it('reads several files into one stream, in order', async () => {
    const result = await inject([
      '-f',
      manifest('list.json'),
      '-f',
      repoRoot + '/examples/web.yaml',
    ]);
    assert.deepEqual(
      objectsOf(result.stdout).map((o) => o.kind),
      ['List', 'Namespace', 'Deployment', 'Service'],
    );
  });

  it('writes JSON with -o json: one object as is, several as a List', async () => {
    const one = JSON.parse(
      (await inject(['-o', 'json', '-f', fixturePath('peers', 'denverdino-web-deployment.yaml')]))
        .stdout,
    ) as Record<string, unknown>;
    assert.equal(one.kind, 'Deployment');
    validateObject(one);
    const several = JSON.parse(
      (await inject(['--output', 'json', '-f', manifest('all-kinds.yaml')])).stdout,
    ) as { kind: string; items: unknown[] };
    assert.equal(several.kind, 'List');
    assert.equal(several.items.length, 11);
  });

  it('honours --lxcfs-root and --files', async () => {
    const { stdout } = await inject([
      '-f',
      manifest('all-kinds.yaml'),
      '--lxcfs-root',
      '/run/lxcfs',
      '--files',
      'meminfo,/proc/cpuinfo',
    ]);
    const [, pod] = assertValidOutput(stdout);
    assert.ok(pod?.pods[0]);
    assert.deepEqual(lxcfsMounts(pod.pods[0], 'toolbox'), {
      '/proc/cpuinfo': '/run/lxcfs/proc/cpuinfo',
      '/proc/meminfo': '/run/lxcfs/proc/meminfo',
    });
  });

  it('respects the opt-out label and annotations, leaving the file as it was', async () => {
    const result = await inject(['-f', manifest('opt-out.yaml')]);
    assert.equal(result.stdout, read(manifest('opt-out.yaml')));
    assert.deepEqual(stderrLines(result), [
      'deployment.apps/debug-shell (ns ops): skipped: opted out',
      'job.batch/legacy-opt-out (ns ops): skipped: opted out',
      'pod/label-opt-out (ns ops): skipped: opted out',
    ]);
  });

  it('passes unknown kinds through untouched, including a Job of another API group', async () => {
    const result = await inject(['-f', manifest('unknown-kinds.yaml')]);
    assert.equal(result.stdout, read(manifest('unknown-kinds.yaml')));
    assert.deepEqual(stderrLines(result), [
      'rollout.argoproj.io/canary-web: skipped: not a workload',
      'job.batch.volcano.sh/train: skipped: not a workload',
      'service/canary-web: skipped: not a workload',
    ]);
  });

  it('prints the warnings of the rules next to the object', async () => {
    const pod =
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    lxcfs-webhook.io/files: "meminfo,pressure"\n' +
      'spec:\n  containers:\n  - name: c\n    image: busybox\n';
    const result = await inject(['-f', '-'], pod);
    // Nothing is mounted; only the status annotation, with the whole message, is added.
    assert.ok(result.stdout.startsWith(pod.split('spec:')[0]!), result.stdout);
    assert.match(result.stdout, /lxcfs-webhook\.io\/status: .*"reason":"invalid-annotation"/);
    assert.doesNotMatch(result.stdout, /volumeMounts/);
    const lines = stderrLines(result);
    assert.equal(lines.length, 2);
    assert.deepEqual(lines.slice(0, 1), [
      'pod/p: skipped: an lxcfs annotation has a value it cannot use (see warning)',
    ]);
    assert.match(
      lines[1] ?? '',
      /^pod\/p: warning: .*lxcfs-webhook\.io\/files.*"meminfo,pressure"/,
    );
  });

  it('skips sandboxed RuntimeClasses, by --sandbox-runtime-classes (gVisor, Kata and sysbox by default)', async () => {
    const pod =
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  runtimeClassName: my-vm\n  containers:\n  - {name: c, image: busybox}\n';
    assert.match((await inject(['-f', '-'], pod)).stderr, /^pod\/p: injected/);
    assert.equal(
      (await inject(['-f', '-', '--sandbox-runtime-classes', 'my-*'], pod)).stderr,
      'pod/p: skipped: sandboxed RuntimeClass (its own kernel or /proc)\n',
    );
    assert.match(
      (await failInject(['-f', '-', '--sandbox-runtime-classes', 'My VM'], pod)).stderr,
      /--sandbox-runtime-classes.*"My VM".*RuntimeClass names/,
    );
  });

  it("reports a pod with another injector's volumes, named, once", async () => {
    const manifests = [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: old-injector}\nspec:\n  containers:\n  - name: app\n    image: app:1',
      '    volumeMounts:\n    - {name: meminfo, mountPath: /proc/meminfo}',
      '  volumes:\n  - {name: meminfo, hostPath: {path: /var/lib/lxcfs/proc/meminfo}}',
    ].join('\n');
    const result = await inject(['-f', '-'], manifests);
    const pod = objectsOf(result.stdout)[0] as Pod;
    assert.deepEqual(lxcfsMounts(pod, 'app'), {}, 'nothing of ours over theirs');
    assert.deepEqual(stderrLines(result), [
      "pod/old-injector: skipped: it has another injector's lxcfs volumes (see warning)",
      'pod/old-injector: warning: lxcfs: pod already has lxcfs volumes of lxcfs-admission-webhook (Aliyun or a copy): meminfo; nothing mounted over them',
    ]);
  });

  it('reports files skipped for a conflict, and workloads without a pod template', async () => {
    const manifests = [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: old-injector}\nspec:\n  containers:\n  - name: app\n    image: app:1',
      '    volumeMounts:\n    - {name: meminfo, mountPath: /proc/meminfo}',
      '  volumes:\n  - {name: meminfo, configMap: {name: fake-meminfo}}',
      '---\n# a kustomize patch\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 5\n',
    ].join('\n');
    const result = await inject(['-f', '-'], manifests);
    const pod = objectsOf(result.stdout)[0] as Pod;
    assertValidPod(pod);
    assert.equal(Object.keys(lxcfsMounts(pod, 'app')).length, 7);
    const [injected, warning, noTemplate, ...rest] = stderrLines(result);
    assert.equal(
      injected,
      'pod/old-injector: injected 7 files into 1 container (1 mount skipped: mount-path-conflict)',
    );
    // The wording of the warning is the rules' own; here it only has to be there, next to its object.
    assert.match(
      warning ?? '',
      /^pod\/old-injector: warning: lxcfs: container "app".*\/proc\/meminfo/,
    );
    assert.equal(noTemplate, 'deployment.apps/web: skipped: no pod template at spec.template');
    assert.deepEqual(rest, []);
  });

  const peers = readdirSync(fixturePath('peers'))
    .filter((name) => name.endsWith('.yaml'))
    .sort();
  it('has the example workloads of other injectors to check', () => assert.ok(peers.length >= 4));
  for (const name of peers) {
    it(`injects the peer example ${name} into a valid Deployment`, async () => {
      const [deployment, ...rest] = assertValidOutput(
        (await inject(['-f', fixturePath('peers', name)])).stdout,
      );
      assert.equal(rest.length, 0);
      assert.equal(deployment?.object.kind, 'Deployment');
      const pod = deployment?.pods[0];
      assert.ok(pod);
      for (const container of pod.spec?.containers ?? [])
        assert.deepEqual(lxcfsMounts(pod, container.name as string), defaultMounts);
    });
  }

  it('injects the example web server, which sits in a namespace the webhook selects', async () => {
    const [namespace, deployment, service] = assertValidOutput(
      (await inject(['-f', `${repoRoot}/examples/web.yaml`])).stdout,
    );
    assert.deepEqual((namespace?.object.metadata as { labels: unknown }).labels, {
      'lxcfs-admission-webhook': 'enabled',
    });
    assert.equal(service?.object.kind, 'Service');
    const pod = deployment?.pods[0];
    assert.ok(pod);
    assert.deepEqual(lxcfsMounts(pod, 'nginx'), defaultMounts);
    assert.deepEqual(pod.spec?.containers?.[0]?.resources, {
      requests: { cpu: '250m', memory: '128Mi' },
      limits: { cpu: '1', memory: '256Mi' },
    });
  });
});

describe('lxcfs-webhook inject errors', () => {
  it('gives the line and column of a YAML syntax error', async () => {
    const { stderr } = await failInject(['-f', manifest('malformed.yaml')]);
    assert.match(
      stderr,
      /malformed\.yaml: YAML syntax error at line 11, column \d+: .+ \[E_MANIFEST\]/,
    );
  });

  it('names a missing file and a directory given as a file', async () => {
    assert.match(
      (await failInject(['-f', manifest('no-such-file.yaml')])).stderr,
      /no-such-file\.yaml: file not found; check the path/,
    );
    assert.match(
      (await failInject(['-f', fixturePath('manifests')])).stderr,
      /is a directory; pass each file with its own -f/,
    );
  });

  it('refuses a document that is not an object, naming it', async () => {
    const { stderr } = await failInject(['-f', manifest('not-an-object.yaml')]);
    assert.match(
      stderr,
      /not-an-object\.yaml, document 2 \(line 6\): is a list, not a Kubernetes object/,
    );
  });

  it('refuses annotation values YAML reads as booleans, as kubectl would', async () => {
    const pod =
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    lxcfs-webhook.io/inject: false\nspec:\n  containers: []\n';
    const { stderr } = await failInject(['-f', '-'], pod);
    assert.match(
      stderr,
      /stdin, document 1 \(line 1\): metadata\.annotations\["lxcfs-webhook\.io\/inject"\] is a boolean, but annotations must be strings: put the value in quotes/,
    );
  });

  it('refuses to inject through a YAML alias shared by two containers', async () => {
    const pod =
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: x\n    volumeMounts: &m\n' +
      '    - {name: data, mountPath: /data}\n  - name: b\n    image: x\n    volumeMounts: *m\n  volumes:\n  - {name: data, emptyDir: {}}\n';
    const { stderr } = await failInject(['-f', '-'], pod);
    assert.match(
      stderr,
      /stdin, document 1 \(line 1\): pod\/p: cannot add spec\.containers\[0\]\.volumeMounts\[-\]: .*anchor \(&m\)/,
    );
  });

  it('refuses bad flags with the allowed values', async () => {
    assert.match(
      (await failInject(['-f', '-', '--files', 'meminfo,pressure'])).stderr,
      /--files has value "meminfo,pressure"; expected a comma-separated list of cpuinfo, diskstats, loadavg, meminfo, slabinfo, stat, swaps, uptime, online/,
    );
    assert.match(
      (await failInject(['-f', '-', '-o', 'xml'])).stderr,
      /flag --output has value "xml"; expected yaml or json/,
    );
    assert.match(
      (await failInject(['--lxcfs-root', 'relative', '-f', '-'])).stderr,
      /--lxcfs-root has value "relative"; expected an absolute directory/,
    );
    assert.match(
      (await failInject(['-f', '-', '--bogus'])).stderr,
      /unknown flag --bogus; see 'lxcfs-webhook inject --help'/,
    );
    assert.match((await failInject(['-f'])).stderr, /flag --filename needs a value/);
    assert.match(
      (await failInject(['web.yaml'])).stderr,
      /unexpected argument "web.yaml"; see .lxcfs-webhook inject --help./,
    );
    assert.match(
      (await failInject([])).stderr,
      /no manifest given; name one with -f FILE, or -f - to read stdin/,
    );
  });
});
