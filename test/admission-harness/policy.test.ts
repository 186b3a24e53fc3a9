// Policy mode through the API server's own MutatingAdmissionPolicy plugin (Debian's k8s.io/apiserver 0.36,
// see main.go): the objects `lxcfs-webhook policy` prints, on the same namespaces and golden pods as the
// webhook. Each pod must come out as the webhook makes it, less what CEL cannot write (the status
// annotation). Prints how many cases passed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ANNOTATIONS, DEFAULT_FILES } from '../../src/config/defaults.js';
import type { Pod } from '../../src/inject/pod.js';
import { readJsonFixture } from '../helpers/paths.js';
import { runCli } from '../helpers/run-cli.js';
import { HOST } from '../helpers/webhook.js';
import {
  namespace,
  runHarness,
  talliedCases,
  webhookCalls,
  type AdmissionCase,
} from './harness.js';
import { INSTALL_FORMS, makeForm, serviceKey } from './install-forms.js';
import { goldenPods, hasLxcfsVolumes, throughInject } from './pods.js';
import { SIDECAR, serveWith, startSidecarInjector } from './servers.js';

const check = talliedCases('policy');

const LABEL = 'lxcfs-admission-webhook';
const PSA = 'pod-security.kubernetes.io/enforce';

/** The policy and its bindings as `lxcfs-webhook policy` prints them. */
async function policy(flags: string[] = []): Promise<object[]> {
  const result = await runCli(['policy', '-o', 'json', ...flags]);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { items: object[] }).items;
}

const namespaces = [
  namespace('shop', { [LABEL]: 'enabled' }),
  namespace('bank', { [LABEL]: 'required' }),
  namespace('plain'),
  namespace('legacy', { 'mount-lxcfs': 'enabled' }),
  namespace('baseline', { [LABEL]: 'enabled', [PSA]: 'baseline' }),
  namespace('restricted', { [LABEL]: 'required', [PSA]: 'restricted' }),
  namespace('privileged', { [LABEL]: 'enabled', [PSA]: 'privileged' }),
  namespace('lxcfs', { [LABEL]: 'enabled' }),
  namespace('kube-system', { [LABEL]: 'required' }),
];

type PodLabel = 'enabled' | 'disabled' | undefined;
const selection: Array<[string, PodLabel, boolean, boolean]> = [
  // namespace, pod label, injected, injected with --mount-lxcfs-label
  ['shop', undefined, true, true],
  ['shop', 'disabled', false, false],
  ['bank', undefined, true, true],
  ['plain', undefined, false, false],
  ['plain', 'enabled', true, true],
  ['plain', 'disabled', false, false],
  ['legacy', undefined, false, true],
  ['legacy', 'enabled', true, true],
  ['baseline', undefined, false, false],
  ['restricted', 'enabled', false, false],
  ['privileged', undefined, true, true],
  ['lxcfs', undefined, false, false],
  ['lxcfs', 'enabled', false, false],
  ['kube-system', undefined, false, false],
];

const webPod = (ns: string, label?: PodLabel): Pod => {
  const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
  pod.metadata = {
    ...pod.metadata,
    namespace: ns,
    labels: { ...pod.metadata?.labels, ...(label ? { 'lxcfs-webhook.io/inject': label } : {}) },
  };
  return pod;
};

/** The webhook's pod without its status annotation, the one thing the policy cannot write. */
function withoutStatus(pod: Pod): Pod {
  const copy = structuredClone(pod);
  const annotations = { ...copy.metadata?.annotations };
  delete annotations[ANNOTATIONS.status];
  copy.metadata = { ...copy.metadata };
  if (Object.keys(annotations).length > 0) copy.metadata.annotations = annotations;
  else delete copy.metadata.annotations;
  return copy;
}

/**
 * Golden pods where the policy differs from the webhook by design (README, "Policy mode"): a mountPath
 * with a `.` segment (`./proc/uptime/`), which CEL cannot resolve, leaves that container without files.
 */
const DIFFERS: Record<string, { container: string; why: string }> = {
  'relative-mount-paths.json': {
    container: 'app',
    why: 'a mountPath with a . segment: the policy leaves the container alone',
  },
};

const golden = goldenPods();
const injected = await throughInject(golden);
const injectedWeb = (await throughInject([{ name: 'web', pod: webPod('shop') }]))[0]!;

describe("admission harness: policy mode through the API server's MutatingAdmissionPolicy plugin", () => {
  for (const mountLxcfsLabel of [false, true]) {
    it(`namespace labels, Pod Security levels, own and system namespaces${mountLxcfsLabel ? ', --mount-lxcfs-label' : ''}`, async (t) => {
      const cases = selection.map(([ns, label]): AdmissionCase => ({
        name: `${ns}/${label ?? '-'}`,
        namespace: ns,
        object: webPod(ns, label),
      }));
      const out = await runHarness({
        objects: [...namespaces, ...(await policy(mountLxcfsLabel ? ['--mount-lxcfs-label'] : []))],
        cases,
        decode: [injectedWeb.pod],
      });
      for (const [i, [ns, label, plain, withMount]] of selection.entries()) {
        const expected = mountLxcfsLabel ? withMount : plain;
        await check(
          t,
          `namespace ${ns}, pod label ${label ?? 'none'}: ${expected ? 'injected' : 'left alone'}`,
          () => {
            const r = out.results[i]!;
            assert.equal(r.allowed, true, r.error);
            assert.equal(hasLxcfsVolumes(r.object), expected);
            if (expected) {
              const webhookPod = withoutStatus(out.decoded[0]!);
              assert.deepEqual(
                r.object?.spec,
                webhookPod.spec,
                'the same volumes and mounts as the webhook',
              );
            }
          },
        );
      }
    });
  }

  it("golden pods: the webhook's pod, less the status annotation", async (t) => {
    const cases = golden.map((g): AdmissionCase => ({
      name: g.name,
      namespace: 'shop',
      object: { ...g.pod, metadata: { ...g.pod.metadata, namespace: 'shop' } },
    }));
    const expected = injected.map((i) => ({
      ...i.pod,
      metadata: { ...i.pod.metadata, namespace: 'shop' },
    }));
    const out = await runHarness({
      objects: [...namespaces, ...(await policy())],
      cases,
      decode: [...expected, ...cases.map((c) => c.object)],
    });
    const decodedInput = (i: number) => out.decoded[expected.length + i]!;
    for (const [i, g] of golden.entries()) {
      const differs = DIFFERS[g.name];
      await check(t, `${g.name}${differs ? `: differs, ${differs.why}` : ''}`, () => {
        const r = out.results[i]!;
        assert.equal(r.allowed, true, r.error);
        assert.deepEqual(r.warnings, [], 'a policy gives no warnings');
        const expected = withoutStatus(out.decoded[i]!);
        if (differs) {
          // That container as it came in; everything else as the webhook makes it.
          const index = expected.spec!.containers!.findIndex((c) => c.name === differs.container);
          expected.spec!.containers![index] = decodedInput(i).spec!.containers![index]!;
          assert.notDeepEqual(
            r.object,
            withoutStatus(out.decoded[i]!),
            'the difference is still there (else drop it from DIFFERS and the README)',
          );
        }
        assert.deepEqual(r.object, expected);
      });
    }
  });

  it('kubectl debug, reinvocation after a sidecar, dry-run', async (t) => {
    const mesh = await startSidecarInjector();
    try {
      const stored = withoutStatus(injectedWeb.pod);
      const debugged = structuredClone(stored);
      debugged.spec!.ephemeralContainers = [{ name: 'debugger', image: 'busybox:1.36' }];
      const out = await runHarness({
        objects: [
          ...namespaces,
          namespace('meshed', { [LABEL]: 'enabled', 'mesh-injection': 'enabled' }),
          ...(await policy()),
          mesh.configuration,
        ],
        services: { 'mesh-system/mesh-injector:443': `${HOST}:${mesh.port}` },
        cases: [
          {
            name: 'debug',
            namespace: 'shop',
            operation: 'UPDATE',
            subresource: 'ephemeralcontainers',
            object: debugged,
            oldObject: stored,
          },
          { name: 'meshed', namespace: 'meshed', object: webPod('meshed') },
          { name: 'dry', namespace: 'shop', object: webPod('shop'), dryRun: true },
        ],
      });
      const [debug, meshed, dry] = out.results;
      const mounts = (
        pod: Pod | undefined,
        list: 'containers' | 'ephemeralContainers',
        name: string,
      ) =>
        pod?.spec?.[list]?.find((c) => c.name === name)?.volumeMounts?.map((m) => m.mountPath) ??
        [];
      await check(t, 'kubectl debug: the debug container gets every file, no new volume', () => {
        assert.equal(debug!.allowed, true, debug!.error);
        assert.deepEqual(mounts(debug!.object, 'ephemeralContainers', 'debugger'), [
          ...DEFAULT_FILES,
        ]);
        assert.deepEqual(debug!.object?.spec?.volumes, stored.spec?.volumes);
      });
      await check(t, 'reinvocation: the sidecar added after the policy gets every file', () => {
        assert.equal(meshed!.allowed, true, meshed!.error);
        assert.deepEqual(
          webhookCalls(meshed!).map((c) => c.webhook),
          ['sidecar.mesh.example'],
        );
        assert.deepEqual(mounts(meshed!.object, 'containers', SIDECAR.name), [...DEFAULT_FILES]);
        assert.deepEqual(mounts(meshed!.object, 'containers', 'web'), [...DEFAULT_FILES]);
      });
      await check(t, 'dry-run: injected the same', () => {
        assert.equal(dry!.allowed, true, dry!.error);
        assert.deepEqual(dry!.object?.spec, withoutStatus(injectedWeb.pod).spec);
      });
    } finally {
      await mesh.close();
    }
  });

  describe('policy and webhook installed at once', () => {
    let form: Awaited<ReturnType<typeof makeForm>>;
    let serve: Awaited<ReturnType<typeof serveWith>>;
    before(async () => {
      form = await makeForm(INSTALL_FORMS[0]!);
      serve = await serveWith(form.serving, form.configuration);
    });
    after(async () => serve.stop());

    it('the policy runs first; the webhook then adds nothing but its status annotation', async (t) => {
      const cases = golden.map((g): AdmissionCase => ({
        name: g.name,
        namespace: 'shop',
        object: { ...g.pod, metadata: { ...g.pod.metadata, namespace: 'shop' } },
      }));
      const out = await runHarness({
        objects: [...namespaces, ...(await policy()), form.configuration],
        services: { [serviceKey(form.configuration)]: `${HOST}:${serve.port}` },
        cases,
        decode: injected.map((i) => ({
          ...i.pod,
          metadata: { ...i.pod.metadata, namespace: 'shop' },
        })),
      });
      for (const [i, g] of golden.entries()) {
        await check(t, `${g.name}: the pod the webhook alone makes, nothing twice`, () => {
          const r = out.results[i]!;
          assert.equal(r.allowed, true, r.error);
          assert.deepEqual(r.object, out.decoded[i], 'the same pod as with the webhook alone');
          if (DIFFERS[g.name]) return; // the webhook adds the files the policy left out
          for (const [key, value] of Object.entries(r.annotations).filter(([k]) =>
            k.startsWith('patch.webhook.admission.k8s.io/'),
          )) {
            const ops = (JSON.parse(value) as { patch: Array<{ path: string }> }).patch;
            assert.ok(
              ops.every((op) => op.path.startsWith('/metadata/annotations')),
              `${key}: the webhook added only its annotation: ${JSON.stringify(ops)}`,
            );
          }
        });
      }
    });
  });
});
