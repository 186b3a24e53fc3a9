// Chart 0.1.0 (test/fixtures/chart-0.1.0, the chart before issue 21) on the same Helm model and the
// same scenarios as lifecycle.test.ts: every scenario fails there, each for the defect the issue names.
// This is what shows the model tests can fail, and that they fail on what real Helm does with that
// chart, not on its template text (which the renderer matches byte for byte). The upgrade from 0.1.0
// to this chart is here too: refused while it would delete the namespace, then safe once it is kept.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fixturePath } from '../helpers/paths.js';
import type { HelmVersion } from '../helm/helm.js';
import { chartDir, releaseObjects, renderChart } from './render.js';
import * as scenario from './scenarios.js';

const OLD = fixturePath('chart-0.1.0', 'lxcfs-webhook');
const worlds: scenario.World[] = [];
after(async () => {
  for (const w of worlds) await w.runner.close();
});
const on = (version: HelmVersion, chart = OLD) => {
  const w = scenario.world(version, chart);
  worlds.push(w);
  return w;
};
const { NS, RELEASE } = scenario;

for (const version of [3, 4] as HelmVersion[]) {
  describe(`chart 0.1.0 fails the lifecycle scenarios, Helm ${version}`, () => {
    it("the README's install: the namespace the user made (or none) is refused", async () => {
      await assert.rejects(
        scenario.installAsReadme(on(version)),
        /INSTALLATION FAILED: Unable to continue with install: Namespace "lxcfs" in namespace "" exists and cannot be imported into the current release: invalid ownership metadata/,
      );
      // As 0.1.0's README said, with no namespace: the release record has nowhere to go.
      await assert.rejects(
        on(version).helm.install(RELEASE, OLD, { namespace: NS }),
        /INSTALLATION FAILED: create: failed to create: namespaces "lxcfs" not found/,
      );
    });
    it('--create-namespace: Helm 3 fails on "already exists"; Helm 4 installs', async () => {
      const install = scenario.installCreatingNamespace(on(version));
      if (version === 3)
        await assert.rejects(install, /INSTALLATION FAILED: namespaces "lxcfs" already exists/);
      else await install;
    });
    it('helm template with self-signed makes a new CA at every render', () => {
      assert.throws(
        () => scenario.templateIsStable(on(version)),
        /helm template with certificates\.mode=self-signed renders the same twice/,
      );
    });
    it('values that cannot work are not refused: certificates.mode=null installs a webhook with no certificate', async () => {
      await assert.rejects(
        scenario.refusesValuesThatCannotWork(on(version)),
        /^AssertionError.*certificates\.mode=null$/,
      );
      const objects = releaseObjects(
        renderChart({ chart: OLD, values: [{ certificates: { mode: null } }] }),
      );
      const mwc = objects.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
      assert.equal(mwc.webhooks[0].clientConfig.caBundle, undefined);
      assert.equal(mwc.metadata.annotations, undefined, 'and nothing injects one');
      assert.throws(
        () => renderChart({ chart: OLD, values: [{ webhook: { podDisruptionBudget: null } }] }),
        /nil pointer evaluating interface \{\}\.enabled/,
      );
    });
  });
}

describe('chart 0.1.0 where Helm 4 installs it (--create-namespace)', () => {
  const installed = async () => {
    const w = on(4);
    await w.helm.install(RELEASE, OLD, { namespace: NS, createNamespace: true });
    w.cluster.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'my-app-settings', namespace: NS },
      data: { k: 'dg==' },
    });
    return w;
  };
  it("helm uninstall deletes the namespace and everything in it: the user's Secret and the release history", async () => {
    const w = await installed();
    await w.helm.uninstall(RELEASE, { namespace: NS });
    assert.equal(w.cluster.tryGet({ kind: 'Namespace', name: NS }), undefined);
    assert.equal(w.cluster.list('Secret').length, 0, "the user's Secret went with it");
  });
  it('helm upgrade --set createNamespace=false deletes the running install', async () => {
    const w = await installed();
    await w.helm.upgrade(RELEASE, OLD, { namespace: NS, set: ['createNamespace=false'] });
    assert.deepEqual(
      w.cluster.list().filter((o) => o.metadata.namespace !== undefined || o.kind === 'Namespace'),
      [],
      'the namespace, and with it everything in it, is gone',
    );
    assert.ok(
      w.cluster.tryGet({ kind: 'MutatingWebhookConfiguration', name: 'lxcfs-webhook' }),
      'while the webhook configuration stays, pointing at a Service that is gone',
    );
    assert.deepEqual(w.helm.history(RELEASE, NS), [], 'and Helm no longer knows the release');
  });
  it("self-signed takes any existing lxcfs-webhook-tls (cert-manager's, expired) into its manifest and caBundle", async () => {
    const w = await installed();
    const expired = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: 'lxcfs-webhook-tls',
        namespace: NS,
        annotations: { 'cert-manager.io/certificate-name': 'lxcfs-webhook' },
      },
      data: { 'ca.crt': 'b3RoZXIgQ0E=', 'tls.crt': 'ZXhwaXJlZA==', 'tls.key': 'a2V5' },
    };
    w.cluster.create(expired);
    const objects = renderChart({
      chart: OLD,
      namespace: NS,
      values: [{ certificates: { mode: 'self-signed' } }],
      lookup: w.cluster.list(),
      isUpgrade: true,
    }).map((r) => r.object);
    assert.deepEqual(objects.find((o) => o.kind === 'Secret')!.data, expired.data);
    assert.equal(
      objects.find((o) => o.kind === 'MutatingWebhookConfiguration')!.webhooks[0].clientConfig
        .caBundle,
      expired.data['ca.crt'],
    );
  });
  it('the upgrade to this chart is refused while it would delete the namespace, and keeps everything once the namespace is kept', async () => {
    const w = await installed();
    await assert.rejects(
      w.helm.upgrade(RELEASE, chartDir, { namespace: NS, resetValues: true }),
      /UPGRADE FAILED: .*namespace lxcfs belongs to release lxcfs-webhook \(chart 0\.1\.0 made it\).*kubectl annotate namespace lxcfs helm\.sh\/resource-policy=keep/s,
    );
    const ns = w.cluster.get({ kind: 'Namespace', name: NS });
    ns.metadata.annotations = { ...ns.metadata.annotations, 'helm.sh/resource-policy': 'keep' };
    w.cluster.update(ns);
    await w.helm.upgrade(RELEASE, chartDir, { namespace: NS, resetValues: true });
    assert.ok(w.cluster.tryGet({ kind: 'Namespace', name: NS }), 'kept');
    assert.ok(w.cluster.tryGet({ kind: 'Secret', namespace: NS, name: 'my-app-settings' }));
    assert.equal(w.helm.status(RELEASE, NS)?.status, 'deployed');
    assert.ok(w.helm.output.some((l) => /Skipping delete of Namespace lxcfs/.test(l)));
  });
});
