// The audit on kubectl-made clusters (test/fixtures/audit, see generate.mjs there): every finding, every
// owner kind, both namespace modes, clean clusters; and the proof that the audit and the webhook cannot
// drift: each affected pod, sent through the webhook's review function, comes back clean for the audit,
// with exactly the files the audit said were missing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { reviewAdmission } from '../../src/admission/review.js';
import { audit, type AuditReport } from '../../src/audit/audit.js';
import { examinePod } from '../../src/audit/findings.js';
import { addDocument, checkComplete, emptyInput, type AuditInput } from '../../src/audit/input.js';
import { webhookFor } from '../../src/audit/selection.js';
import { stringMap, type Pod } from '../../src/inject/pod.js';
import { defaultSettings, parseSettings } from '../../src/inject/settings.js';
import { fixturePath, readJsonFixture } from '../helpers/paths.js';
import { applyStrict, assertValidPod } from '../helpers/pod-check.js';

interface List {
  items: Array<
    { kind: string; metadata: { name: string; namespace?: string } } & Record<string, unknown>
  >;
}

function inputOf(list: List): AuditInput {
  const input = emptyInput();
  addDocument(input, 'test', JSON.stringify(list));
  checkComplete(input);
  return input;
}

const cluster = () => readJsonFixture<List>('audit', 'cluster.json');
const rows = (report: AuditReport) =>
  report.pods.map((p) => `${p.namespace} ${p.owner} ${p.mode} ${p.finding.kind}`);

describe('audit of a cluster with every finding (cluster.json)', () => {
  const report = audit(inputOf(cluster()), defaultSettings);

  it('finds each affected pod once, with the entry that selects it, its finding and its owner', () => {
    assert.deepEqual(rows(report), [
      'bank deployment/ledger required never-injected',
      'bank deployment/ledger required never-injected',
      'bank job.batch/nightly-29012345 required never-injected',
      'bank replicaset.apps/teller-dchebf8 required never-injected',
      'peers deployment/aliyun-app enabled other-injector',
      'peers deployment/cndoit18-app enabled other-injector',
      'peers deployment/kubeservice-app enabled other-injector',
      'plain deployment/cache pod-label never-injected',
      'shop daemonset/logs enabled other-root',
      'shop deployment/web enabled never-injected',
      'shop deployment/web enabled never-injected',
      'shop job.batch/migrate enabled never-injected',
      'shop pod/scratch enabled never-injected',
      'shop statefulset/db enabled partially-injected',
    ]);
  });

  it('leaves out injected, opted-out, unselected, excluded and finished pods, and counts what it selected', () => {
    const names = report.pods.map((p) => p.name).join(' ');
    for (const clean of [
      'api-',
      'audit-log-',
      'debug-shell-',
      'other-',
      'secure-',
      'lxcfs-webhook-',
      'report-',
    ]) {
      assert.ok(!names.includes(clean), `${clean}* is not reported`);
    }
    assert.deepEqual(report.summary, {
      namespaces: 8,
      pods: 21,
      finished: 1,
      selected: { required: 5, enabled: 10, 'pod-label': 1 },
      affected: 14,
    });
  });

  it('says what is missing, from where, and whose volumes they are', () => {
    const byOwner = (owner: string) => report.pods.find((p) => p.owner === owner)!.finding;
    assert.deepEqual(
      byOwner('statefulset/db').missing,
      [{ container: 'busybox', files: [...defaultSettings.files] }],
      'only the container without mounts',
    );
    assert.deepEqual(byOwner('deployment/web').missing, [
      { container: 'nginx', files: [...defaultSettings.files] },
    ]);
    assert.deepEqual(byOwner('daemonset/logs').roots, ['/run/lxcfs']);
    assert.deepEqual(
      byOwner('daemonset/logs').missing,
      [],
      'the webhook adds nothing over mounts from another root',
    );
    const kubeservice = byOwner('deployment/kubeservice-app').foreignVolumes!;
    assert.ok(
      kubeservice.some((v) => v.name === 'var-lib-lxc' && v.hostPath === '/var/lib/lxc'),
      'the parent directory volume too',
    );
    assert.ok(
      kubeservice.some(
        (v) => v.name === 'lxcfs-proc-meminfo' && v.hostPath === '/var/lib/lxc/lxcfs/proc/meminfo',
      ),
    );
    assert.ok(
      byOwner('deployment/cndoit18-app').foreignVolumes!.some(
        (v) => v.name === 'lxcfs-sys-devices-system-cpu',
      ),
      'a mount of the directory above online counts',
    );
    assert.ok(
      byOwner('deployment/aliyun-app').foreignVolumes!.every((v) =>
        v.hostPath.startsWith('/var/lib/lxcfs/'),
      ),
      'same root and names as ours, but not our volume (no type: File)',
    );
  });

  it('gives one fix per owner, the right command for each owner kind', () => {
    const fixes = Object.fromEntries(report.fixes.map((f) => [`${f.namespace} ${f.owner}`, f]));
    assert.equal(report.fixes.length, 12);
    assert.equal(
      fixes['bank deployment/ledger']!.fix.command,
      'kubectl -n bank rollout restart deployment/ledger',
    );
    assert.equal(fixes['bank deployment/ledger']!.pods.length, 2, 'one command for both pods');
    assert.equal(
      fixes['shop statefulset/db']!.fix.command,
      'kubectl -n shop rollout restart statefulset/db',
    );
    assert.equal(
      fixes['shop daemonset/logs']!.fix.command,
      'kubectl -n shop rollout restart daemonset/logs',
    );
    assert.match(fixes['shop daemonset/logs']!.before!, /--lxcfs-root/);
    assert.match(
      fixes['shop job.batch/migrate']!.fix.command,
      /^kubectl -n shop delete pod migrate-\w+$/,
    );
    assert.match(fixes['shop job.batch/migrate']!.fix.note!, /Job starts a new pod/);
    assert.equal(fixes['shop pod/scratch']!.fix.command, 'kubectl -n shop delete pod scratch');
    assert.match(fixes['shop pod/scratch']!.fix.note!, /not recreated: create it again/);
    assert.match(
      fixes['bank replicaset.apps/teller-dchebf8']!.fix.command,
      /^kubectl -n bank delete pod teller-dchebf8-\w+$/,
    );
    assert.match(
      fixes['bank replicaset.apps/teller-dchebf8']!.fix.note!,
      /ReplicaSet recreates them/,
    );
    assert.match(fixes['peers deployment/cndoit18-app']!.before!, /stop the other injector/);
  });

  it('reports namespaces that ask for lxcfs but are never served', () => {
    assert.deepEqual(
      report.namespaces.map((n) => n.namespace),
      ['kube-system', 'locked', 'typo'],
    );
    assert.match(report.namespaces[0]!.problem, /never serves kube-system/);
    assert.match(report.namespaces[1]!.problem, /restricted/);
    assert.match(
      report.namespaces[2]!.problem,
      /=true selects nothing; expected enabled or required/,
    );
  });

  it('without ReplicaSets in the input, names the ReplicaSet and says how to name the Deployment', () => {
    const list = cluster();
    list.items = list.items.filter((o) => o.kind !== 'ReplicaSet');
    const fix = audit(inputOf(list), defaultSettings).fixes.find(
      (f) => f.namespace === 'shop' && f.owner.startsWith('replicaset.apps/web-'),
    )!;
    assert.equal(fix.ownerNote, 'its Deployment unknown: add replicasets to the input');
    assert.equal(fix.pods.length, 2);
    assert.equal(fix.fix.command, `kubectl -n shop delete pod ${fix.pods.join(' ')}`);
  });

  it("judges pods by the webhook's configured root and files", () => {
    const other = audit(inputOf(cluster()), parseSettings({ lxcfsRoot: '/run/lxcfs' }));
    assert.equal(
      other.pods.find((p) => p.owner === 'daemonset/logs'),
      undefined,
      'injected from /run/lxcfs: right for this webhook',
    );
    assert.equal(other.pods.find((p) => p.owner === 'deployment/api')?.finding.kind, 'other-root');
    const fewer = audit(inputOf(cluster()), parseSettings({ files: 'meminfo' }));
    assert.deepEqual(fewer.pods.find((p) => p.owner === 'deployment/web')?.finding.missing, [
      { container: 'nginx', files: ['/proc/meminfo'] },
    ]);
  });
});

describe('audit of clean clusters', () => {
  it('finds nothing in clean.json (both namespace modes, injected, unselected pods)', () => {
    const report = audit(inputOf(readJsonFixture<List>('audit', 'clean.json')), defaultSettings);
    assert.deepEqual([report.pods, report.fixes, report.namespaces], [[], [], []]);
    assert.deepEqual(report.summary.selected, { required: 2, enabled: 2, 'pod-label': 0 });
  });
  it('finds nothing in a cluster of namespaces only', () => {
    const list = cluster();
    list.items = list.items.filter(
      (o) => o.kind === 'Namespace' && !['kube-system', 'locked', 'typo'].includes(o.metadata.name),
    );
    const report = audit(inputOf(list), defaultSettings);
    assert.deepEqual([report.pods, report.summary.pods], [[], 0]);
  });
});

/** A recorded AdmissionReview of another project, carrying `pod` instead of its own. */
function review(pod: Pod, namespace: string): unknown {
  const recorded = readJsonFixture<{ request: Record<string, unknown> }>(
    'peers',
    'ymping-admissionreview-v1-pod-create.json',
  );
  return { ...recorded, request: { ...recorded.request, namespace, object: pod } };
}

function throughWebhook(pod: Pod, namespace: string): { pod: Pod; added: Map<string, string[]> } {
  const answer = reviewAdmission(review(pod, namespace), defaultSettings);
  assert.equal(answer.kind, 'answer');
  const response = (answer.kind === 'answer' ? answer.review.response : {}) as { patch?: string };
  const patch =
    response.patch === undefined
      ? []
      : (JSON.parse(Buffer.from(response.patch, 'base64').toString()) as Array<{
          path: string;
          value: unknown;
        }>);
  const after = applyStrict(pod, patch);
  assertValidPod(after);
  // Per container, the mount paths the webhook's patch adds.
  const added = new Map<string, string[]>();
  for (const op of patch) {
    const match = /^\/spec\/(containers|initContainers)\/(\d+)\/volumeMounts/.exec(op.path);
    if (!match) continue;
    const name = String((pod.spec as any)[match[1]!][Number(match[2])].name);
    const mounts = (Array.isArray(op.value) ? op.value : [op.value]) as Array<{
      mountPath: string;
    }>;
    added.set(name, [...(added.get(name) ?? []), ...mounts.map((m) => m.mountPath)]);
  }
  return { pod: after, added };
}

describe('the audit and the webhook cannot drift', () => {
  const list = cluster();
  const namespaces = new Map(
    list.items
      .filter((o) => o.kind === 'Namespace')
      .map((o) => [o.metadata.name, stringMap((o.metadata as any).labels)]),
  );
  const selected = list.items.filter(
    (o): o is any =>
      o.kind === 'Pod' &&
      webhookFor(
        { name: o.metadata.namespace!, labels: namespaces.get(o.metadata.namespace!)! },
        stringMap((o.metadata as any).labels),
      ) !== undefined,
  );

  it('has selected pods of every finding, and clean ones', () => assert.ok(selected.length >= 15));
  for (const pod of selected) {
    it(`${pod.metadata.namespace}/${pod.metadata.name}: the webhook adds exactly what the audit says is missing, and then the audit finds nothing to add`, () => {
      const finding = examinePod(pod, defaultSettings);
      const { pod: after, added } = throughWebhook(pod, pod.metadata.namespace);
      assert.deepEqual(
        new Map((finding?.missing ?? []).map((m) => [m.container, [...m.files]])),
        added,
      );
      const again = examinePod(after, defaultSettings);
      // Mounts of another root or injector stay (the webhook never replaces a mount), so a finding stays,
      // with nothing missing; every other pod is clean.
      assert.deepEqual(again === undefined ? [] : again.missing, []);
      const foreign = ['other-root', 'other-injector'].includes(finding?.kind ?? '');
      assert.equal(again !== undefined, foreign, `finding after the webhook: ${again?.kind}`);
    });
  }
});

describe("audit of pods mounting the host's own /proc or /sys", () => {
  for (const name of ['cadvisor.json', 'host-proc-debug.json']) {
    it(`${name}: never-injected before the webhook, nothing to report after it (a restart does clear it)`, () => {
      const pod = readJsonFixture<Pod>('pods', name);
      const before = examinePod(pod, defaultSettings);
      assert.equal(before?.kind, 'never-injected');
      assert.equal(before?.foreignVolumes, undefined);
      const { pod: after } = throughWebhook(pod, pod.metadata!.namespace!);
      assert.equal(examinePod(after, defaultSettings), undefined);
    });
  }
});

describe('the fixtures are what generate.mjs writes', () => {
  it('are Lists of kubectl-made objects', () => {
    for (const name of ['cluster.json', 'clean.json']) {
      const list = JSON.parse(readFileSync(fixturePath('audit', name), 'utf8')) as List & {
        kind: string;
      };
      assert.equal(list.kind, 'List');
      assert.ok(list.items.every((o) => ['Namespace', 'Pod', 'ReplicaSet'].includes(o.kind)));
    }
  });
});
