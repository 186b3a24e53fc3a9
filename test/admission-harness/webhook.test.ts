// The webhook as the real API server calls it: every install form's MutatingWebhookConfiguration, loaded
// into the API server's own mutating webhook plugin (Debian's k8s.io/apiserver 0.36, see main.go), calls a
// real `lxcfs-webhook serve` over TLS verified with the installed caBundle for the Service's DNS name,
// on real Namespace and Pod objects; the patched object is decoded into a typed corev1.Pod. Prints how
// many cases passed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ANNOTATIONS, DEFAULT_FILES } from '../../src/config/defaults.js';
import type { Pod } from '../../src/inject/pod.js';
import { parseStatus } from '../../src/inject/status.js';
import { readJsonFixture } from '../helpers/paths.js';
import { HOST } from '../helpers/webhook.js';
import {
  runHarness,
  namespace,
  talliedCases,
  webhookCalls,
  type AdmissionCase,
  type AdmissionResult,
} from './harness.js';
import {
  INSTALL_FORMS,
  installedSelfSigned,
  makeForm,
  serviceKey,
  type InstallForm,
} from './install-forms.js';
import { goldenPods, hasLxcfsVolumes, throughInject } from './pods.js';
import { SIDECAR, serveWith, slowProxy, startSidecarInjector } from './servers.js';

const check = talliedCases('webhook');

const LABEL = 'lxcfs-admission-webhook';
const PSA = 'pod-security.kubernetes.io/enforce';
const POD_LABEL = 'lxcfs-webhook.io/inject';

/** The namespaces of the selection table: every label and Pod Security level, our own and the system ones. */
function selectionNamespaces(form: InstallForm) {
  return [
    namespace('shop', { [LABEL]: 'enabled' }),
    namespace('bank', { [LABEL]: 'required' }),
    namespace('plain'),
    namespace('typo', { [LABEL]: 'yes' }),
    namespace('legacy', { 'mount-lxcfs': 'enabled' }),
    namespace('both', { 'mount-lxcfs': 'enabled', [LABEL]: 'enabled' }),
    namespace('privileged', { [LABEL]: 'enabled', [PSA]: 'privileged' }),
    namespace('baseline', { [LABEL]: 'enabled', [PSA]: 'baseline' }),
    namespace('restricted', { [LABEL]: 'required', [PSA]: 'restricted' }),
    namespace('warn-only', {
      [LABEL]: 'enabled',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/audit': 'baseline',
    }),
    namespace(form.ownNamespace, { [LABEL]: 'enabled' }),
    namespace('kube-system', { [LABEL]: 'required' }),
    namespace('kube-public', { [LABEL]: 'enabled' }),
    namespace('kube-node-lease', { [LABEL]: 'enabled' }),
  ];
}

type PodLabel = 'enabled' | 'disabled' | undefined;
/** [namespace, pod label, the one entry the API server must call (none: null), given the mount-lxcfs component or not]. */
function selectionTable(form: InstallForm): Array<[string, PodLabel, string | null]> {
  const mount = form.mountLxcfsLabel;
  return [
    ['shop', undefined, 'namespaces'],
    ['shop', 'enabled', 'namespaces'],
    ['shop', 'disabled', null],
    ['bank', undefined, 'required'],
    ['bank', 'enabled', 'required'],
    ['bank', 'disabled', null],
    ['plain', undefined, null],
    ['plain', 'enabled', 'pods'],
    ['plain', 'disabled', null],
    ['typo', undefined, null],
    ['typo', 'enabled', 'pods'],
    ['legacy', undefined, mount ? 'mount-lxcfs' : null],
    ['legacy', 'enabled', mount ? 'mount-lxcfs' : 'pods'],
    ['legacy', 'disabled', null],
    ['both', undefined, 'namespaces'],
    ['privileged', undefined, 'namespaces'],
    ['baseline', undefined, null],
    ['baseline', 'enabled', null],
    ['restricted', undefined, null],
    ['restricted', 'enabled', null],
    ['warn-only', undefined, 'namespaces'],
    [form.ownNamespace, undefined, null],
    [form.ownNamespace, 'enabled', null],
    ['kube-system', undefined, null],
    ['kube-system', 'enabled', null],
    ['kube-public', undefined, null],
    ['kube-node-lease', 'enabled', null],
  ];
}

const webPod = (ns: string, label?: PodLabel, annotations: Record<string, string> = {}): Pod => {
  const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
  pod.metadata = {
    ...pod.metadata,
    namespace: ns,
    labels: { ...pod.metadata?.labels, ...(label ? { [POD_LABEL]: label } : {}) },
    annotations,
  };
  return pod;
};

// What `inject` makes of every golden pod (and of the web pod), computed once: the API server's result must equal it.
const golden = goldenPods();
const injected = await throughInject(golden);
const injectedWeb = (await throughInject([{ name: 'web', pod: webPod('shop') }]))[0]!;

/** Asserts `result` is `expected` (what inject made, round-tripped through corev1.Pod by the same chain). */
function assertSameAsInject(result: AdmissionResult, expected: Pod, warnings: string[]): void {
  assert.equal(result.allowed, true, result.error);
  assert.deepEqual(result.object, expected);
  assert.deepEqual(
    result.warnings,
    warnings,
    'the API server passes on the same warnings inject prints',
  );
}

describe("admission harness: the webhook of every install form, through the API server's mutating webhook plugin", () => {
  for (const recipe of INSTALL_FORMS) {
    it(recipe.name, async (t) => {
      const form = await makeForm(recipe);
      const serve = await serveWith(form.serving, form.configuration);
      try {
        const table = selectionTable(form);
        const cases: AdmissionCase[] = [
          ...table.map(([ns, label]): AdmissionCase => ({
            name: `${ns}/${label ?? '-'}`,
            namespace: ns,
            object: webPod(ns, label),
          })),
          {
            name: 'annotation opt-out',
            namespace: 'shop',
            object: webPod('shop', undefined, { [ANNOTATIONS.inject]: 'false' }),
          },
          ...golden.map((g): AdmissionCase => ({
            name: `golden ${g.name}`,
            namespace: 'shop',
            object: { ...g.pod, metadata: { ...g.pod.metadata, namespace: 'shop' } },
          })),
        ];
        const expected = [
          ...injected.map((i) => ({
            ...i.pod,
            metadata: { ...i.pod.metadata, namespace: 'shop' },
          })),
          injectedWeb.pod,
        ];
        const out = await runHarness({
          objects: [...selectionNamespaces(form), form.configuration],
          services: { [serviceKey(form.configuration)]: `${HOST}:${serve.port}` },
          cases,
          decode: [...expected, ...cases.map((c) => c.object)],
        });
        const decodedInject = out.decoded.slice(0, expected.length);
        const decodedInput = out.decoded.slice(expected.length);
        const result = (name: string) => out.results.find((r) => r.name === name)!;

        for (const [i, [ns, label, entry]] of table.entries()) {
          await check(
            t,
            `namespace ${ns}, pod label ${label ?? 'none'}: ${entry ? `${entry}.lxcfs-webhook.io, once` : 'no call'}`,
            () => {
              const r = result(`${ns}/${label ?? '-'}`);
              assert.equal(r.allowed, true, r.error);
              const calls = webhookCalls(r).filter((c) => c.configuration === 'lxcfs-webhook');
              assert.deepEqual(
                calls.map((c) => c.webhook),
                entry ? [`${entry}.lxcfs-webhook.io`] : [],
              );
              if (entry) {
                assert.ok(hasLxcfsVolumes(r.object), 'injected');
                const expectedPod = structuredClone(decodedInject[decodedInject.length - 1]!);
                expectedPod.metadata = {
                  ...expectedPod.metadata,
                  namespace: ns,
                  labels: r.object?.metadata?.labels,
                  annotations: expectedPod.metadata?.annotations,
                };
                assert.deepEqual(r.object, expectedPod, 'the same pod inject makes');
              } else {
                assert.deepEqual(r.object, decodedInput[i], 'unchanged');
              }
            },
          );
        }
        await check(
          t,
          'annotation lxcfs-webhook.io/inject: "false": called, nothing changed',
          () => {
            const r = result('annotation opt-out');
            assert.deepEqual(
              webhookCalls(r).map((c) => [c.webhook, c.mutated]),
              [['namespaces.lxcfs-webhook.io', false]],
            );
            assert.ok(!hasLxcfsVolumes(r.object));
          },
        );
        for (const [i, g] of golden.entries()) {
          await check(
            t,
            `golden pod ${g.name}: the API server's typed result equals inject's`,
            () => {
              assertSameAsInject(
                result(`golden ${g.name}`),
                decodedInject[i]!,
                injected[i]!.warnings,
              );
            },
          );
        }
      } finally {
        await serve.stop();
      }
    });
  }
});

describe('admission harness: what the API server decides around the call', () => {
  let form: InstallForm;
  let serve: Awaited<ReturnType<typeof serveWith>>;
  before(async () => {
    form = await makeForm(INSTALL_FORMS[0]!);
    serve = await serveWith(form.serving, form.configuration);
  });
  after(async () => serve.stop());
  const namespaces = () => selectionNamespaces(form);
  const services = () => ({ [serviceKey(form.configuration)]: `${HOST}:${serve.port}` });
  const lxcfsMountPaths = (
    pod: Pod | undefined,
    list: 'containers' | 'ephemeralContainers',
    name: string,
  ) =>
    (pod?.spec?.[list] ?? [])
      .find((c) => c.name === name)
      ?.volumeMounts?.filter((m) => m.name?.startsWith('lxcfs-'))
      .map((m) => m.mountPath) ?? [];

  it("kubectl debug: an UPDATE of pods/ephemeralcontainers mounts the pod's lxcfs volumes in the new container", async (t) => {
    const stored = injectedWeb.pod;
    const debugged = structuredClone(stored);
    debugged.spec!.ephemeralContainers = [
      {
        name: 'debugger-x7k2p',
        image: 'busybox:1.36',
        stdin: true,
        tty: true,
        targetContainerName: 'web',
      },
    ];
    const cases: AdmissionCase[] = ['shop', 'bank'].map((ns) => ({
      name: ns,
      namespace: ns,
      operation: 'UPDATE',
      subresource: 'ephemeralcontainers',
      object: { ...debugged, metadata: { ...debugged.metadata, name: 'web-1', namespace: ns } },
      oldObject: { ...stored, metadata: { ...stored.metadata, name: 'web-1', namespace: ns } },
    }));
    const out = await runHarness({
      objects: [...namespaces(), form.configuration],
      services: services(),
      cases,
    });
    for (const r of out.results) {
      await check(t, `${r.name}: the debug container gets every file, nothing else changes`, () => {
        assert.equal(r.allowed, true, r.error);
        assert.deepEqual(lxcfsMountPaths(r.object, 'ephemeralContainers', 'debugger-x7k2p'), [
          ...DEFAULT_FILES,
        ]);
        assert.deepEqual(
          r.object?.spec?.volumes,
          stored.spec?.volumes ?? [],
          'no new volume (that subresource accepts none)',
        );
        assert.equal(
          r.object?.metadata?.annotations?.[ANNOTATIONS.status],
          stored.metadata?.annotations?.[ANNOTATIONS.status],
        );
      });
    }
  });

  it('reinvocation: a sidecar another webhook adds after ours gets lxcfs in a second round', async (t) => {
    const mesh = await startSidecarInjector();
    try {
      const ns = namespace('shop', { [LABEL]: 'enabled', 'mesh-injection': 'enabled' });
      const out = await runHarness({
        objects: [ns, form.configuration, mesh.configuration],
        services: { ...services(), 'mesh-system/mesh-injector:443': `${HOST}:${mesh.port}` },
        cases: [{ name: 'meshed', namespace: 'shop', object: webPod('shop') }],
      });
      const r = out.results[0]!;
      await check(
        t,
        'ours (round 0), the sidecar injector, ours again (round 1); the sidecar has every file',
        () => {
          assert.equal(r.allowed, true, r.error);
          assert.deepEqual(
            webhookCalls(r).map((c) => `${c.round}:${c.webhook}:${c.mutated}`),
            [
              '0:namespaces.lxcfs-webhook.io:true',
              '0:sidecar.mesh.example:true',
              '1:namespaces.lxcfs-webhook.io:true',
            ],
          );
          assert.deepEqual(lxcfsMountPaths(r.object, 'containers', SIDECAR.name), [
            ...DEFAULT_FILES,
          ]);
          const status = parseStatus(r.object?.metadata?.annotations?.[ANNOTATIONS.status]);
          assert.deepEqual(Object.keys(status?.containers ?? {}), ['web', SIDECAR.name]);
        },
      );
      await check(
        t,
        "the result equals inject's on the pod with the sidecar already in it",
        async () => {
          const withSidecar = webPod('shop');
          withSidecar.spec!.containers!.push(SIDECAR);
          const [expected] = await throughInject([{ name: 'meshed', pod: withSidecar }]);
          const decoded = (await runHarness({ objects: [], decode: [expected!.pod] })).decoded[0];
          assert.deepEqual(r.object, decoded);
        },
      );
    } finally {
      await mesh.close();
    }
  });

  it('dry-run (sideEffects: None): the webhook is called and the result is the same', async (t) => {
    const out = await runHarness({
      objects: [...namespaces(), form.configuration],
      services: services(),
      cases: [
        { name: 'real', namespace: 'shop', object: webPod('shop') },
        { name: 'dry', namespace: 'shop', object: webPod('shop'), dryRun: true },
      ],
    });
    await check(t, 'kubectl apply --dry-run=server shows the injected pod', () => {
      const [real, dry] = out.results;
      assert.equal(dry!.allowed, true, dry!.error);
      assert.ok(hasLxcfsVolumes(dry!.object));
      assert.deepEqual(dry!.object, real!.object);
    });
  });

  it("no replica answering: enabled admits without lxcfs, required refuses with the README's message", async (t) => {
    const stored = injectedWeb.pod;
    const debugged = structuredClone(stored);
    debugged.spec!.ephemeralContainers = [{ name: 'debugger', image: 'busybox:1.36' }];
    const out = await runHarness({
      objects: [...namespaces(), form.configuration],
      services: { [serviceKey(form.configuration)]: '' },
      cases: [
        { name: 'enabled', namespace: 'shop', object: webPod('shop') },
        { name: 'pod label', namespace: 'plain', object: webPod('plain', 'enabled') },
        { name: 'required', namespace: 'bank', object: webPod('bank') },
        {
          name: 'required debug',
          namespace: 'bank',
          operation: 'UPDATE',
          subresource: 'ephemeralcontainers',
          object: debugged,
          oldObject: stored,
        },
        { name: 'excluded', namespace: 'kube-system', object: webPod('kube-system') },
      ],
    });
    const byName = (n: string) => out.results.find((r) => r.name === n)!;
    for (const name of ['enabled', 'pod label', 'excluded']) {
      await check(t, `${name}: admitted, without lxcfs`, () => {
        assert.equal(byName(name).allowed, true, byName(name).error);
        assert.ok(!hasLxcfsVolumes(byName(name).object));
      });
    }
    for (const name of ['required', 'required debug']) {
      await check(t, `${name}: refused: failed calling webhook "required.lxcfs-webhook.io"`, () => {
        assert.equal(byName(name).allowed, false);
        assert.match(
          byName(name).error ?? '',
          /failed calling webhook "required\.lxcfs-webhook\.io"/,
        );
      });
    }
  });

  it('a reply slower than timeoutSeconds: enabled admits without lxcfs, required refuses', async (t) => {
    // The chart with timeoutSeconds: 1 (self-signed), and a proxy that holds every reply back 2.5 s.
    const { configuration, serving } = await installedSelfSigned('lxcfs', {
      injection: { timeoutSeconds: 1 },
    });
    const slowServe = await serveWith(serving, configuration);
    const proxy = await slowProxy(slowServe.port, 2500);
    try {
      const out = await runHarness({
        objects: [...namespaces(), configuration],
        services: { [serviceKey(configuration)]: `${HOST}:${proxy.port}` },
        cases: [
          { name: 'enabled', namespace: 'shop', object: webPod('shop') },
          { name: 'required', namespace: 'bank', object: webPod('bank') },
        ],
      });
      const [enabled, required] = out.results;
      await check(t, 'enabled: admitted without lxcfs after the timeout', () => {
        assert.equal(enabled!.allowed, true, enabled!.error);
        assert.ok(!hasLxcfsVolumes(enabled!.object));
      });
      await check(t, 'required: refused, the deadline named', () => {
        assert.equal(required!.allowed, false);
        assert.match(
          required!.error ?? '',
          /failed calling webhook "required\.lxcfs-webhook\.io".*(deadline exceeded|Timeout)/s,
        );
      });
    } finally {
      await proxy.close();
      await slowServe.stop();
    }
  });

  it('TLS: a caBundle that did not sign the certificate, or a certificate for another name, is refused', async (t) => {
    const other = await makeForm(INSTALL_FORMS[1]!); // cainjector model: another CA, certificate for our Service
    const wrongCA = structuredClone(form.configuration);
    for (const hook of wrongCA.webhooks)
      hook.clientConfig.caBundle = other.configuration.webhooks[0].clientConfig.caBundle;
    const renamed = structuredClone(other.configuration);
    for (const hook of renamed.webhooks) hook.clientConfig.service.name = 'lxcfs-webhook-renamed';
    const otherServe = await serveWith(other.serving, other.configuration);
    try {
      const run = (configuration: typeof wrongCA, port: number) =>
        runHarness({
          objects: [...namespaces(), configuration],
          services: { [serviceKey(configuration)]: `${HOST}:${port}` },
          cases: [{ name: 'required', namespace: 'bank', object: webPod('bank') }],
        });
      const [unknownAuthority] = (await run(wrongCA, serve.port)).results;
      await check(t, 'caBundle of another CA: x509 unknown authority', () => {
        assert.equal(unknownAuthority!.allowed, false);
        assert.match(unknownAuthority!.error ?? '', /certificate signed by unknown authority/);
      });
      const [wrongName] = (await run(renamed, otherServe.port)).results;
      await check(
        t,
        'Service renamed: the certificate is not valid for lxcfs-webhook-renamed.lxcfs.svc',
        () => {
          assert.equal(wrongName!.allowed, false);
          assert.match(wrongName!.error ?? '', /not lxcfs-webhook-renamed\.lxcfs\.svc/);
        },
      );
      const [right] = (await run(other.configuration, otherServe.port)).results;
      await check(t, 'the same certificate for the right name and CA: injected', () => {
        assert.equal(right!.allowed, true, right!.error);
        assert.ok(hasLxcfsVolumes(right!.object));
      });
    } finally {
      await otherServe.stop();
    }
  });
});
