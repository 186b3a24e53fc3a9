// `lxcfs-webhook certs --secret` as the chart's Job runs it: in a pod (test/helm/pods.ts: the webhook
// image's entry point, non-root, read-only root, its service-account token) against the cluster model's
// API with the chart's own RBAC for the Job. Renders, upgrades and renewal through Helm are in
// test/chart/lifecycle.test.ts; here: what each run writes, and what the RBAC refuses.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { renderChart } from '../chart/render.js';
import { Cluster, type K8sObject } from '../helm/cluster.js';
import { Helm } from '../helm/helm.js';
import { LocalPodRunner } from '../helm/pods.js';

const runner = new LocalPodRunner();
after(() => runner.close());

const rendered = renderChart({ values: [{ certificates: { mode: 'self-signed' } }] }).map(
  (r) => r.object,
);
const hookObjects = rendered.filter((o) => o.metadata.name === 'lxcfs-webhook-certs-hook');
const job = hookObjects.find((o) => o.kind === 'Job')!;
const mwc = rendered.find((o) => o.kind === 'MutatingWebhookConfiguration')!;

function cluster(without: string[] = []): { helm: Helm; cluster: Cluster } {
  const c = new Cluster();
  c.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lxcfs' } });
  for (const o of hookObjects) if (o.kind !== 'Job' && !without.includes(o.kind)) c.create(o);
  return { cluster: c, helm: new Helm(c, 3, runner) };
}
const writes = (c: Cluster) =>
  c.events.filter((e) => /^(create|update) (Secret|MutatingWebhookConfiguration)/.test(e));

describe("certs --secret in the chart's Job", () => {
  it('makes the Secret once, sets every caBundle once the configuration exists, then changes nothing', async () => {
    const { cluster: c, helm } = cluster();
    const first = await runner.run(job, helm);
    assert.ok(first.succeeded, first.logs);
    assert.match(
      first.logs,
      /Secret lxcfs\/lxcfs-webhook-self-signed: created .*\n.*MutatingWebhookConfiguration lxcfs-webhook does not exist yet/,
    );
    c.create(mwc);
    const second = await runner.run(job, helm);
    assert.match(second.logs, /kept .*\n.*caBundle set on 4 of 4 webhooks/);
    const before = writes(c).length;
    const third = await runner.run(job, helm);
    assert.match(third.logs, /every webhook's caBundle is already the CA/);
    assert.equal(writes(c).length, before, 'a run with nothing to do writes nothing');
    const run = runner.runs.at(-1)!;
    assert.equal(run.user, '65532', "as the webhook image's user");
  });
  it('without the ClusterRoleBinding the API refuses, and the Job fails naming the call', async () => {
    const { cluster: c, helm } = cluster(['ClusterRoleBinding']);
    c.create(mwc);
    const result = await runner.run(job, helm);
    assert.equal(result.succeeded, false);
    assert.match(
      result.logs,
      /GET \/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/lxcfs-webhook: 403 Forbidden: .* cannot get resource "mutatingwebhookconfigurations" .*\[E_KUBE\]/,
    );
  });
  it('the renewal CronJob never creates the Secret', async () => {
    const { helm } = cluster();
    const cron = rendered.find((o) => o.kind === 'CronJob')!;
    const objects = rendered.filter(
      (o) => o.metadata.name === 'lxcfs-webhook-certs' && o.kind !== 'CronJob',
    );
    for (const o of objects) helm.cluster.create(o);
    const cronJob: K8sObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'renew', namespace: 'lxcfs' },
      spec: cron.spec.jobTemplate.spec,
    };
    const result = await runner.run(cronJob, helm);
    assert.equal(result.succeeded, false);
    assert.match(result.logs, /does not exist and --renew-only never creates it/);
  });
});
