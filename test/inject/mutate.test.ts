// The injection rules end to end at the function level: every patch is applied with an independent
// strict RFC 6902 implementation and the resulting pod is checked the way the API server would.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ANNOTATIONS, DEFAULT_FILES } from '../../src/config/defaults.js';
import { mutatePod, type MutationResult } from '../../src/inject/mutate.js';
import type { Container, Pod, Volume } from '../../src/inject/pod.js';
import {
  defaultSettings,
  parseSettings,
  type InjectionSettings,
} from '../../src/inject/settings.js';
import { parseStatus } from '../../src/inject/status.js';
import { readJsonFixture } from '../helpers/paths.js';
import { applyStrict, assertValidPod } from '../helpers/pod-check.js';

const pod = (name: string): Pod => readJsonFixture<Pod>('pods', name);

function inject(
  input: Pod,
  settings: InjectionSettings = defaultSettings,
): { result: MutationResult; after: Pod } {
  const result = mutatePod({ pod: input, settings });
  const after = applyStrict(input, result.patch);
  assertValidPod(after);
  return { result, after };
}

/** Injects `input`, which must be skipped for `reason`: nothing of ours mounted, the reason in the status. */
function injectSkipped(input: Pod, reason: string): MutationResult {
  const { result, after } = inject(input);
  assert.equal(result.outcome.podSkipReason, reason);
  assert.deepEqual(after.spec, input.spec, 'no volume or mount of ours');
  assert.equal(
    parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status])?.skipped?.reason,
    reason,
  );
  return result;
}

function container(p: Pod, name: string): Container {
  const all = [
    ...(p.spec?.initContainers ?? []),
    ...(p.spec?.containers ?? []),
    ...(p.spec?.ephemeralContainers ?? []),
  ];
  const found = all.find((c) => c.name === name);
  assert.ok(found, `container ${name} exists`);
  return found;
}

/** Targets mounted in a container from the pod's lxcfs hostPath volumes, with their host paths. */
function lxcfsMounts(p: Pod, name: string): Record<string, string> {
  const volumes = new Map((p.spec?.volumes ?? []).map((v: Volume) => [v.name, v]));
  const out: Record<string, string> = {};
  for (const m of container(p, name).volumeMounts ?? []) {
    const hostPath = volumes.get(m.name)?.hostPath;
    if (
      hostPath?.path?.startsWith('/var/lib/lxcfs/') ||
      hostPath?.path?.startsWith('/run/lxcfs/')
    ) {
      assert.equal(hostPath.type, 'File', `${m.name} is a typed hostPath`);
      assert.equal(m.readOnly, true, `${m.name} is mounted read-only`);
      out[m.mountPath as string] = hostPath.path;
    }
  }
  return out;
}

const allDefaultMounts = Object.fromEntries(DEFAULT_FILES.map((f) => [f, `/var/lib/lxcfs${f}`]));

describe('mutatePod on a pod from a Deployment', () => {
  it('adds the volumes array whole when the pod has none, and mounts every default file', () => {
    const input = pod('web-no-volumes.json');
    assert.equal(input.spec?.volumes, undefined);
    const { result, after } = inject(input);
    assert.deepEqual(result.patch.map((op) => op.path).slice(0, 2), [
      '/spec/volumes',
      '/spec/containers/0/volumeMounts',
    ]);
    assert.deepEqual(lxcfsMounts(after, 'web'), allDefaultMounts);
    assert.equal(result.outcome.result, 'injected');
    assert.equal(result.outcome.mountsAdded, 8);
    assert.deepEqual(result.warnings, []);
  });

  it('records what it injected in the status annotation', () => {
    const { after } = inject(pod('web-no-volumes.json'));
    const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
    assert.deepEqual(status, { containers: { web: { injected: [...DEFAULT_FILES] } } });
  });

  it('changes nothing when run again on its own output', () => {
    const { after } = inject(pod('web-no-volumes.json'));
    const again = mutatePod({ pod: after, settings: defaultSettings });
    assert.deepEqual(again.patch, []);
    assert.equal(again.outcome.result, 'unchanged');
  });

  it('takes host paths from the configured root and file set only', () => {
    const settings = parseSettings({ lxcfsRoot: '/run/lxcfs/', files: 'meminfo,/proc/cpuinfo' });
    const { after } = inject(pod('web-no-volumes.json'), settings);
    assert.deepEqual(lxcfsMounts(after, 'web'), {
      '/proc/cpuinfo': '/run/lxcfs/proc/cpuinfo',
      '/proc/meminfo': '/run/lxcfs/proc/meminfo',
    });
  });
});

describe('mutatePod on a pod with init containers, a native sidecar and annotations', () => {
  it('injects containers and the native sidecar, skips the plain init container', () => {
    const { after } = inject(pod('app-with-sidecars.json'));
    assert.deepEqual(lxcfsMounts(after, 'app'), allDefaultMounts);
    assert.deepEqual(lxcfsMounts(after, 'metrics'), allDefaultMounts);
    assert.deepEqual(lxcfsMounts(after, 'log-shipper'), allDefaultMounts);
    assert.deepEqual(lxcfsMounts(after, 'migrate'), {});
    const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
    assert.equal(status?.containers.migrate?.skipped?.['/proc/meminfo'], 'init-container');
  });

  it('keeps the existing mounts and volumes in their order, appending ours', () => {
    const input = pod('app-with-sidecars.json');
    const { after } = inject(input);
    assert.deepEqual(after.spec?.volumes?.slice(0, 2), input.spec?.volumes);
    assert.deepEqual(
      container(after, 'app').volumeMounts?.slice(0, 2),
      container(input, 'app').volumeMounts,
    );
    assert.ok(!('volumeMounts' in container(after, 'migrate')));
  });

  it('keeps annotations whose keys contain "/" and "~" and escapes its own key', () => {
    const input = pod('app-with-sidecars.json');
    const { result, after } = inject(input);
    const statusOp = result.patch.find((op) => op.path.startsWith('/metadata'));
    assert.deepEqual(statusOp && { op: statusOp.op, path: statusOp.path }, {
      op: 'add',
      path: '/metadata/annotations/lxcfs-webhook.io~1status',
    });
    for (const [key, value] of Object.entries(input.metadata?.annotations ?? {})) {
      assert.equal(after.metadata?.annotations?.[key], value, key);
    }
  });

  it('adds the annotations map whole when the pod has none', () => {
    const { result, after } = inject(pod('web-no-volumes.json'));
    assert.ok(result.patch.some((op) => op.path === '/metadata/annotations'));
    assert.ok(after.metadata?.annotations?.[ANNOTATIONS.status]);
  });

  it('injects init containers when include-init-containers is "true"', () => {
    const input = pod('app-with-sidecars.json');
    input.metadata!.annotations![ANNOTATIONS.includeInitContainers] = 'true';
    const { after } = inject(input);
    assert.deepEqual(lxcfsMounts(after, 'migrate'), allDefaultMounts);
  });

  it('skips containers named in exclude-containers and warns about names the pod lacks', () => {
    const input = pod('app-with-sidecars.json');
    input.metadata!.annotations![ANNOTATIONS.excludeContainers] = 'metrics, nope';
    const { result, after } = inject(input);
    assert.deepEqual(lxcfsMounts(after, 'metrics'), {});
    assert.deepEqual(lxcfsMounts(after, 'app'), allDefaultMounts);
    assert.deepEqual(result.warnings, [
      `lxcfs: annotation ${ANNOTATIONS.excludeContainers} names "nope", which the pod does not have`,
    ]);
  });

  it('narrows the file set with the files annotation, by short name or path', () => {
    const input = pod('app-with-sidecars.json');
    input.metadata!.annotations![ANNOTATIONS.files] = 'meminfo, /sys/devices/system/cpu/online';
    const { after } = inject(input);
    assert.deepEqual(lxcfsMounts(after, 'app'), {
      '/proc/meminfo': '/var/lib/lxcfs/proc/meminfo',
      '/sys/devices/system/cpu/online': '/var/lib/lxcfs/sys/devices/system/cpu/online',
    });
  });
});

describe('mutatePod with conflicts', () => {
  it('skips a file where the container already mounts something, and never reuses a foreign volume of our name', () => {
    const input = pod('conflicts.json');
    const { result, after } = inject(input);
    const worker = lxcfsMounts(after, 'worker');
    assert.equal(worker['/proc/meminfo'], undefined);
    assert.equal(worker['/proc/stat'], undefined);
    assert.equal(worker['/proc/cpuinfo'], '/var/lib/lxcfs/proc/cpuinfo');
    // The pod's own `lxcfs-proc-stat` volume points at /etc/shadow: no container may get a mount of it.
    assert.equal(lxcfsMounts(after, 'helper')['/proc/stat'], undefined);
    assert.ok(!container(after, 'helper').volumeMounts?.some((m) => m.name === 'lxcfs-proc-stat'));
    assert.deepEqual(
      after.spec?.volumes?.find((v) => v.name === 'lxcfs-proc-stat'),
      input.spec?.volumes?.[1],
    );

    const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
    assert.deepEqual(status?.containers.worker?.skipped, {
      '/proc/meminfo': 'mount-path-conflict',
      '/proc/stat': 'mount-path-conflict',
    });
    assert.deepEqual(status?.containers.helper?.skipped, { '/proc/stat': 'volume-name-conflict' });
    assert.deepEqual(result.outcome.fileSkips, {
      'mount-path-conflict': 2,
      'volume-name-conflict': 1,
    });
    assert.deepEqual(result.warnings, [
      'lxcfs: container "worker": already mounts something there; not mounted: /proc/meminfo, /proc/stat',
      'lxcfs: container "helper": pod has another volume of the same name; not mounted: /proc/stat',
    ]);
  });

  // The host's own /sys (cAdvisor) or /proc mounted at the same path is no lxcfs tree of another injector:
  // only the files under it conflict, and the pod gets every other one.
  it('a cAdvisor pod (host /sys at /sys) gets every /proc file; only /sys/devices/system/cpu/online is skipped', () => {
    const { result, after } = inject(pod('cadvisor.json'));
    assert.equal(result.outcome.result, 'injected');
    const { '/sys/devices/system/cpu/online': _online, ...procFiles } = allDefaultMounts;
    assert.deepEqual(lxcfsMounts(after, 'cadvisor'), procFiles);
    const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
    assert.deepEqual(status?.containers.cadvisor?.skipped, {
      '/sys/devices/system/cpu/online': 'mount-path-conflict',
    });
    assert.equal(status?.skipped, undefined, 'not skipped as another injector');
    assert.deepEqual(result.warnings, [
      'lxcfs: container "cadvisor": already mounts something there; not mounted: /sys/devices/system/cpu/online',
    ]);
  });

  it('a pod with the host /proc at /proc gets /sys/devices/system/cpu/online; its /proc files are skipped', () => {
    const { result, after } = inject(pod('host-proc-debug.json'));
    assert.equal(result.outcome.result, 'injected');
    assert.deepEqual(lxcfsMounts(after, 'debug'), {
      '/sys/devices/system/cpu/online': '/var/lib/lxcfs/sys/devices/system/cpu/online',
    });
    const skipped = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status])?.containers.debug
      ?.skipped;
    assert.deepEqual(
      Object.keys(skipped ?? {}),
      DEFAULT_FILES.filter((f) => f.startsWith('/proc/')),
    );
    assert.ok(Object.values(skipped ?? {}).every((reason) => reason === 'mount-path-conflict'));
  });

  it("the host's own meminfo at /proc/meminfo conflicts for that file only", () => {
    const input: Pod = {
      metadata: { name: 'p' },
      spec: {
        containers: [
          { name: 'app', volumeMounts: [{ name: 'host-meminfo', mountPath: '/proc/meminfo' }] },
        ],
        volumes: [{ name: 'host-meminfo', hostPath: { path: '/proc/meminfo', type: 'File' } }],
      },
    };
    const { result, after } = inject(input);
    assert.deepEqual(result.outcome.fileSkips, { 'mount-path-conflict': 1 });
    assert.equal(lxcfsMounts(after, 'app')['/proc/meminfo'], undefined);
    assert.equal(lxcfsMounts(after, 'app')['/proc/cpuinfo'], '/var/lib/lxcfs/proc/cpuinfo');
  });

  const peerPod = (file: string, annotations: Record<string, string> = {}): Pod => {
    const peer = readJsonFixture<{ volumes: Volume[]; volumeMountsPerContainer: unknown[] }>(
      'peers',
      file,
    );
    const input = pod('app-with-sidecars.json');
    input.metadata!.annotations = { ...input.metadata!.annotations, ...annotations };
    input.spec!.volumes = [...(input.spec!.volumes ?? []), ...peer.volumes];
    input.spec!.containers![0]!.volumeMounts = [
      ...(input.spec!.containers![0]!.volumeMounts ?? []),
      ...(peer.volumeMountsPerContainer as never[]),
    ];
    return input;
  };
  const others: Array<[string, Pod, string]> = [
    [
      'kubeservice',
      peerPod('kubeservice-injected-volumes.json'),
      'kubeservice-stack/lxcfs-webhook',
    ],
    ['cndoit18', peerPod('cndoit18-injected-volumes.json'), 'cndoit18/lxcfs-on-kubernetes'],
    [
      'Aliyun, by its status annotation',
      peerPod('kubeservice-injected-volumes.json', {
        'lxcfs-admission-webhook.aliyun.com/status': 'mutated',
      }),
      'Aliyun lxcfs-admission-webhook',
    ],
  ];
  for (const [name, input, injector] of others) {
    it(`never stacks mounts on another injector's (${name}): reported once, named, in the warning and the status`, () => {
      const result = injectSkipped(input, 'other-injector');
      const { after } = inject(input);
      assert.equal(result.warnings.length, 1);
      assert.ok(result.warnings[0]!.includes(`lxcfs volumes of ${injector}`), result.warnings[0]);
      assert.ok(
        parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status])?.skipped?.message.includes(
          injector,
        ),
      );
      assert.deepEqual(
        mutatePod({ pod: after, settings: defaultSettings }).patch,
        [],
        'idempotent',
      );
    });
  }

  it('names an injector it does not know by the host directory of its volumes', () => {
    const input = pod('web-no-volumes.json');
    input.spec!.volumes = [{ name: 'mem', hostPath: { path: '/opt/lxcfs/proc/meminfo' } }];
    input.spec!.containers![0]!.volumeMounts = [{ name: 'mem', mountPath: 'proc/meminfo' }];
    const { result } = inject(input);
    assert.match(
      result.warnings[0] ?? '',
      /an unknown injector \(host directory \/opt\/lxcfs\): mem;/,
    );
  });

  it("leaves an opted-out pod with another injector's volumes alone, silently", () => {
    const input = peerPod('cndoit18-injected-volumes.json', { [ANNOTATIONS.inject]: 'false' });
    assert.deepEqual(mutatePod({ pod: input, settings: defaultSettings }).patch, []);
  });

  it('keeps every warning under 120 characters', () => {
    const input = pod('conflicts.json');
    input.spec!.containers![0]!.name =
      'a-container-with-a-very-long-name-that-goes-on-and-on-for-quite-a-while-indeed';
    const { result } = inject(input);
    assert.ok(result.warnings.length > 0);
    for (const w of result.warnings) assert.ok(w.length <= 120, w);
  });
});

describe('mutatePod on partially injected pods', () => {
  it('adds only what is missing: a lost mount, a lost volume, and a container added by another webhook', () => {
    const { after: injected } = inject(pod('app-with-sidecars.json'));
    const partial = structuredClone(injected);
    const app = container(partial, 'app');
    app.volumeMounts = app.volumeMounts?.filter((m) => m.mountPath !== '/proc/uptime');
    partial.spec!.volumes = partial.spec!.volumes?.filter((v) => v.name !== 'lxcfs-proc-uptime');
    for (const c of [...partial.spec!.containers!, ...partial.spec!.initContainers!]) {
      c.volumeMounts = c.volumeMounts?.filter((m) => m.name !== 'lxcfs-proc-uptime');
    }
    partial.spec!.containers!.push({ name: 'late-sidecar', image: 'envoyproxy/envoy:v1.31' });

    const { result, after } = inject(partial);
    for (const name of ['app', 'metrics', 'log-shipper', 'late-sidecar']) {
      assert.deepEqual(lxcfsMounts(after, name), allDefaultMounts, name);
    }
    assert.equal(result.outcome.mountsAdded, 3 + 8);
    assert.equal(result.patch.filter((op) => op.path === '/spec/volumes/-').length, 1);
    const statusOp = result.patch.find((op) => op.path.startsWith('/metadata'));
    assert.equal(statusOp?.op, 'replace');
    assert.ok(
      parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status])?.containers['late-sidecar'],
    );
  });
});

describe('mutatePod leaves pods alone', () => {
  const cases: Array<[string, (p: Pod) => void, string]> = [
    [
      'label inject=disabled',
      (p) => {
        p.metadata!.labels = { 'lxcfs-webhook.io/inject': 'disabled' };
      },
      'opted-out',
    ],
    [
      'annotation inject: "false"',
      (p) => {
        p.metadata!.annotations = { [ANNOTATIONS.inject]: 'False' };
      },
      'opted-out',
    ],
    // One set of words on every boolean annotation, in any case, ours and other injectors' opt-outs.
    ...[
      ANNOTATIONS.inject,
      ANNOTATIONS.legacyMutate,
      ANNOTATIONS.aliyunMutate,
      ANNOTATIONS.forkEnable,
    ].flatMap((key) =>
      ['n', 'No', 'false', 'OFF', ' disabled '].map((v): [string, (p: Pod) => void, string] => [
        `${key}: "${v}"`,
        (p) => {
          p.metadata!.annotations = { [key]: v };
        },
        'opted-out',
      ]),
    ),
    [
      'Windows by spec.os',
      (p) => {
        p.spec!.os = { name: 'windows' };
      },
      'windows',
    ],
    [
      'Windows by nodeSelector',
      (p) => {
        p.spec!.nodeSelector = { 'kubernetes.io/os': 'windows' };
      },
      'windows',
    ],
    [
      'hostPID',
      (p) => {
        p.spec!.hostPID = true;
      },
      'host-pid',
    ],
    [
      'mirror pod',
      (p) => {
        p.metadata!.annotations = { 'kubernetes.io/config.mirror': 'abc' };
      },
      'mirror-pod',
    ],
  ];
  for (const [name, change, reason] of cases) {
    it(`when ${name}`, () => {
      const input = pod('web-no-volumes.json');
      change(input);
      const result = mutatePod({ pod: input, settings: defaultSettings });
      assert.deepEqual(result.patch, []);
      assert.deepEqual(result.warnings, []);
      assert.equal(result.outcome.podSkipReason, reason);
    });
  }

  const invalid: Array<[string, string, string]> = [
    [
      ANNOTATIONS.inject,
      'maybe',
      'true, yes, y, on, enabled or false, no, n, off, disabled (any case)',
    ],
    [
      ANNOTATIONS.legacyMutate,
      'perhaps',
      'true, yes, y, on, enabled or false, no, n, off, disabled (any case)',
    ],
    [
      ANNOTATIONS.aliyunMutate,
      '2',
      'true, yes, y, on, enabled or false, no, n, off, disabled (any case)',
    ],
    [
      ANNOTATIONS.files,
      'meminfo,pressure',
      'a comma-separated subset of cpuinfo, diskstats, loadavg, meminfo, stat, swaps, uptime, online',
    ],
    [
      ANNOTATIONS.files,
      'slabinfo',
      'a comma-separated subset of cpuinfo, diskstats, loadavg, meminfo, stat, swaps, uptime, online',
    ],
    [
      ANNOTATIONS.files,
      ' , ',
      'a comma-separated subset of cpuinfo, diskstats, loadavg, meminfo, stat, swaps, uptime, online',
    ],
    [
      ANNOTATIONS.includeInitContainers,
      'yes please',
      'true, yes, y, on, enabled or false, no, n, off, disabled (any case)',
    ],
  ];
  for (const [key, value, expected] of invalid) {
    it(`when ${key} has the odd value "${value}", and says so`, () => {
      const input = pod('web-no-volumes.json');
      input.metadata!.annotations = { [key]: value };
      const { result, after } = inject(input);
      assert.equal(result.outcome.podSkipReason, 'invalid-annotation');
      assert.equal(result.outcome.mountsAdded, 0);
      assert.deepEqual(after.spec, input.spec);
      assert.equal(result.warnings.length, 1);
      const problem = `annotation ${key} has value "${value}"; expected ${expected}`;
      assert.ok(result.warnings[0]!.includes(problem.slice(0, 100)), result.warnings[0]);
      // The warning may be cut at 120 characters; the status annotation has the whole message.
      const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
      assert.equal(status?.skipped?.reason, 'invalid-annotation');
      assert.ok(status?.skipped?.message.includes(problem), status?.skipped?.message);
    });
  }

  it('reports every bad annotation, not only the first', () => {
    const input = pod('web-no-volumes.json');
    input.metadata!.annotations = {
      [ANNOTATIONS.inject]: 'maybe',
      [ANNOTATIONS.files]: 'pressure',
      [ANNOTATIONS.includeInitContainers]: 'sometimes',
    };
    const { result } = inject(input);
    assert.equal(result.outcome.podSkipReason, 'invalid-annotation');
    assert.deepEqual(
      result.warnings.map((w) => /annotation (\S+)/.exec(w)?.[1]),
      [ANNOTATIONS.inject, ANNOTATIONS.includeInitContainers, ANNOTATIONS.files],
    );
    assert.ok(result.warnings.every((w) => w.length <= 120));
  });

  it('accepts the same words, in any case, on include-init-containers', () => {
    for (const [value, included] of [
      ['YES', true],
      ['On', true],
      ['y', true],
      ['Enabled', true],
      ['no', false],
      ['OFF', false],
    ] as const) {
      const input = pod('app-with-sidecars.json');
      input.metadata!.annotations = { [ANNOTATIONS.includeInitContainers]: value };
      const { after } = inject(input);
      const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
      assert.equal(status?.containers.migrate?.skipped === undefined, included, value);
    }
  });

  it('lets an opt-out win over a bad value elsewhere: the pod is left alone, silently', () => {
    const input = pod('web-no-volumes.json');
    input.metadata!.annotations = {
      [ANNOTATIONS.files]: 'pressure',
      [ANNOTATIONS.aliyunMutate]: 'no',
    };
    const result = mutatePod({ pod: input, settings: defaultSettings });
    assert.deepEqual(
      [result.patch, result.warnings, result.outcome.podSkipReason],
      [[], [], 'opted-out'],
    );
  });
});

describe('mutatePod on pods where lxcfs is wrong or useless', () => {
  for (const runtimeClassName of ['gvisor', 'runsc', 'kata', 'kata-clh', 'sysbox-runc']) {
    it(`skips runtimeClassName ${runtimeClassName}, with the reason in the status and no warning`, () => {
      const input = pod('web-no-volumes.json');
      input.spec!.runtimeClassName = runtimeClassName;
      assert.deepEqual(injectSkipped(input, 'sandboxed-runtime').warnings, []);
    });
  }

  it('injects other RuntimeClasses, and follows a configured list instead of the default', () => {
    const input = pod('web-no-volumes.json');
    input.spec!.runtimeClassName = 'runc-fast';
    assert.equal(inject(input).result.outcome.result, 'injected');
    const settings = parseSettings({ sandboxRuntimeClasses: 'runc-*' });
    assert.equal(mutatePod({ pod: input, settings }).outcome.podSkipReason, 'sandboxed-runtime');
    input.spec!.runtimeClassName = 'gvisor';
    assert.equal(
      mutatePod({ pod: input, settings }).outcome.result,
      'injected',
      'gvisor is no longer listed',
    );
    assert.equal(
      mutatePod({ pod: input, settings: parseSettings({ sandboxRuntimeClasses: '' }) }).outcome
        .result,
      'injected',
    );
  });

  it('skips hostUsers: false, with the reason in the status and a warning (its volumes would need idmapped FUSE mounts)', () => {
    const input = pod('web-no-volumes.json');
    input.spec!.hostUsers = false;
    const result = injectSkipped(input, 'user-namespace');
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /hostUsers: false/);
    input.spec!.hostUsers = true;
    assert.equal(
      inject(input).result.outcome.result,
      'injected',
      'hostUsers: true is the host user namespace',
    );
  });

  it("injects shareProcessNamespace pods, and warns that every container sees the pod's totals", () => {
    const input = pod('web-no-volumes.json');
    input.spec!.shareProcessNamespace = true;
    const { result, after } = inject(input);
    assert.deepEqual(lxcfsMounts(after, 'web'), allDefaultMounts);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /shareProcessNamespace: .*pod's totals/);
    assert.ok(result.warnings[0]!.length <= 120);
  });

  it('leaves an opted-out sandboxed pod untouched, without a status', () => {
    const input = pod('web-no-volumes.json');
    input.spec!.runtimeClassName = 'gvisor';
    input.metadata!.labels = { 'lxcfs-webhook.io/inject': 'disabled' };
    assert.deepEqual(mutatePod({ pod: input, settings: defaultSettings }).patch, []);
  });
});

describe('mutatePod on malformed pods', () => {
  const shapes: Array<[string, Pod]> = [
    ['no spec', { metadata: { name: 'x' } }],
    ['no metadata', { spec: { containers: [{ name: 'a', image: 'x' }] } }],
    ['containers not a list', { metadata: {}, spec: { containers: 'app' as never } }],
    [
      'null entries',
      {
        metadata: {},
        spec: { containers: [null as never, { name: 'a', image: 'x' }], volumes: null as never },
      },
    ],
    [
      'annotation values that are not strings',
      {
        metadata: {
          annotations: { [ANNOTATIONS.inject]: true as never, [ANNOTATIONS.files]: 7 as never },
        },
        spec: { containers: [{ name: 'a', image: 'x' }] },
      },
    ],
    [
      'volumeMounts not a list',
      {
        metadata: { annotations: {} },
        spec: { containers: [{ name: 'a', image: 'x', volumeMounts: {} as never }] },
      },
    ],
  ];
  for (const [name, input] of shapes) {
    it(`does not throw, and its patch still applies strictly: ${name}`, () => {
      const result = mutatePod({ pod: input, settings: defaultSettings });
      applyStrict(input, result.patch);
    });
  }
});

describe('mutatePod keeps pods within what the API server stores', () => {
  /** A pod of `count` containers as small as the API server takes. */
  const manyContainers = (count: number): Pod => ({
    metadata: { name: 'many', namespace: 'default' },
    spec: {
      containers: Array.from({ length: count }, (_, i) => ({ name: `c${i}`, image: 'busybox' })),
    },
  });
  const kib = (n: number) => 'x'.repeat(n * 1024);

  it('leaves a pod of 10,000 containers unchanged, with a warning, instead of an 11 MB patch', () => {
    const input = manyContainers(10_000);
    const result = mutatePod({ pod: input, settings: defaultSettings });
    assert.deepEqual(result.patch, []);
    assert.equal(result.outcome.podSkipReason, 'too-large');
    assert.deepEqual(result.warnings, [
      'lxcfs: not injected: mounts for 10000 containers would make this 341 KiB pod too large to store',
    ]);
  });

  it('injects a pod of 300 containers whole, with the status in its short form and a warning', () => {
    const { result, after } = inject(manyContainers(300));
    assert.equal(result.outcome.containersChanged, 300);
    const status = parseStatus(after.metadata?.annotations?.[ANNOTATIONS.status]);
    assert.deepEqual(status?.containers, {});
    assert.match(
      status?.omitted ?? '',
      /^300 containers, 300 with lxcfs files: per-container detail left out/,
    );
    assert.match(
      result.warnings.join('\n'),
      /status annotation lxcfs-webhook.io\/status shortened to counts: the full one \(\d+ KiB\) would not fit in 32 KiB/,
    );
    // What the patch adds (values plus the managedFields entries for them) keeps the pod under etcd's 1.5 MiB.
    assert.ok(JSON.stringify(after).length + JSON.stringify(result.patch).length <= 1536 * 1024);
  });

  it("leaves a pod that is already near etcd's limit unchanged", () => {
    const input = manyContainers(1);
    input.spec!.containers![0]!.env = [{ name: 'BIG', value: kib(1535) }];
    const result = mutatePod({ pod: input, settings: defaultSettings });
    assert.deepEqual(result.patch, []);
    assert.equal(result.outcome.podSkipReason, 'too-large');
  });

  it("echoes a 150 KiB invalid annotation clipped: the pod's annotations stay under 256 KiB and it is not refused", () => {
    const input = manyContainers(1);
    input.metadata!.annotations = { [ANNOTATIONS.files]: kib(150) };
    const { result, after } = inject(input); // inject() checks the API server's 256 KiB rule on the result
    assert.equal(result.outcome.podSkipReason, 'invalid-annotation');
    const status = after.metadata!.annotations![ANNOTATIONS.status]!;
    assert.ok(status.length < 1024, `status annotation of ${status.length} bytes`);
    assert.match(
      parseStatus(status)?.skipped?.message ?? '',
      /^annotation lxcfs-webhook.io\/files has value "x{200,}…"; expected a comma-separated subset/,
    );
  });

  it("shortens the status, or leaves it out with a warning, when the pod's annotations leave too little room", () => {
    const nearly = (freeBytes: number): Pod => {
      const input = manyContainers(3);
      // `filler` plus its key take all but `freeBytes` of the 256 KiB.
      input.metadata!.annotations = {
        filler: 'x'.repeat(256 * 1024 - 'filler'.length - freeBytes),
      };
      return input;
    };
    const roomy = inject(nearly(2048));
    assert.equal(
      Object.keys(
        parseStatus(roomy.after.metadata?.annotations?.[ANNOTATIONS.status])?.containers ?? {},
      ).length,
      3,
    );
    assert.deepEqual(roomy.result.warnings, []);

    const tight = inject(nearly(ANNOTATIONS.status.length + 300));
    assert.match(
      parseStatus(tight.after.metadata?.annotations?.[ANNOTATIONS.status])?.omitted ?? '',
      /^3 containers, 3 with lxcfs files/,
    );
    assert.match(tight.result.warnings.join('\n'), /shortened to counts/);
    assert.equal(tight.result.outcome.mountsAdded, 3 * DEFAULT_FILES.length, 'mounts still added');

    const full = inject(nearly(ANNOTATIONS.status.length + 10));
    assert.equal(full.after.metadata?.annotations?.[ANNOTATIONS.status], undefined);
    assert.match(
      full.result.warnings.join('\n'),
      /status annotation lxcfs-webhook.io\/status left out: the pod's annotations leave no room under 256 KiB/,
    );
    assert.equal(full.result.outcome.mountsAdded, 3 * DEFAULT_FILES.length, 'mounts still added');

    // A skipped pod's status obeys the same room.
    const skipped = nearly(ANNOTATIONS.status.length + 10);
    skipped.spec!.hostUsers = false;
    const skip = inject(skipped);
    assert.equal(skip.after.metadata?.annotations?.[ANNOTATIONS.status], undefined);
    assert.match(skip.result.warnings.join('\n'), /left out/);
  });
});

describe('mutatePod for kubectl debug (UPDATE pods/ephemeralcontainers)', () => {
  function debugged(base: Pod, names: string[]): Pod {
    const next = structuredClone(base);
    next.spec!.ephemeralContainers = [
      ...(next.spec!.ephemeralContainers ?? []),
      ...names.map((name) => ({
        name,
        image: 'busybox:1.36',
        targetContainerName: 'web',
        stdin: true,
        tty: true,
      })),
    ];
    return next;
  }

  it("mounts the pod's existing lxcfs volumes in the new ephemeral container only", () => {
    const { after: running } = inject(pod('web-no-volumes.json'));
    const first = debugged(running, ['debugger-1']);
    const firstResult = mutatePod({
      pod: first,
      settings: defaultSettings,
      ephemeralUpdateOf: running,
    });
    const afterFirst = applyStrict(first, firstResult.patch);
    assert.deepEqual(lxcfsMounts(afterFirst, 'debugger-1'), allDefaultMounts);
    assert.ok(
      firstResult.patch.every((op) => op.path.startsWith('/spec/ephemeralContainers/0/')),
      'only the new container changes',
    );

    const second = debugged(afterFirst, ['debugger-2']);
    const secondResult = mutatePod({
      pod: second,
      settings: defaultSettings,
      ephemeralUpdateOf: afterFirst,
    });
    assert.ok(secondResult.patch.length > 0);
    assert.ok(secondResult.patch.every((op) => op.path.startsWith('/spec/ephemeralContainers/1/')));
    assertValidPod(applyStrict(second, secondResult.patch));
  });

  it('adds nothing and warns when the pod was created without lxcfs volumes', () => {
    const running = pod('web-no-volumes.json');
    const next = debugged(running, ['debugger']);
    const result = mutatePod({ pod: next, settings: defaultSettings, ephemeralUpdateOf: running });
    assert.deepEqual(result.patch, []);
    assert.deepEqual(result.warnings, [
      'lxcfs: container "debugger": pod has no lxcfs volume to reuse; not mounted: /proc/cpuinfo, /proc/diskstats, /proc/loada…',
    ]);
  });
});

describe('mutatePod on real pods from other projects', () => {
  for (const name of ['kubeservice-unittest-pod-1.json', 'kubeservice-unittest-pod-2.json']) {
    it(`injects ${name} into a valid pod that keeps its own volumes`, () => {
      const input = readJsonFixture<Pod>('peers', name);
      input.spec!.containers![0]!.name ||= 'app'; // the fixture's empty name is itself invalid
      const { after } = inject(input);
      assert.deepEqual(lxcfsMounts(after, input.spec!.containers![0]!.name!), allDefaultMounts);
      for (const v of input.spec?.volumes ?? [])
        assert.deepEqual(
          after.spec?.volumes?.find((w) => w.name === v.name),
          v,
        );
    });
  }

  it('injects the pod of a real v1 AdmissionReview (service-account token volume, tolerations)', () => {
    const review = readJsonFixture<{ request: { object: Pod } }>(
      'peers',
      'ymping-admissionreview-v1-pod-create.json',
    );
    const { after } = inject(review.request.object);
    const name = review.request.object.spec!.containers![0]!.name!;
    assert.deepEqual(lxcfsMounts(after, name), allDefaultMounts);
  });
});
