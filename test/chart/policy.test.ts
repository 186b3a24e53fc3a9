// Policy mode in the two install forms that ship it: the chart's template (generated from src/policy by
// policy-template.ts) and the kustomize component deploy/components/mutating-admission-policy both give
// the objects `lxcfs-webhook policy` prints for the same settings. The harness
// (test/admission-harness/policy.test.ts) runs those objects through the API server's policy plugin.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/paths.js';
import { runCli } from '../helpers/run-cli.js';
import { chartDir, renderChart, RenderError, renderRaw } from './render.js';
import { policyTemplate } from './policy-template.js';

const TEMPLATE = join(chartDir, 'templates', 'mutating-admission-policy.yaml');
const isPolicy = (o: { kind: string }) =>
  o.kind === 'MutatingAdmissionPolicy' || o.kind === 'MutatingAdmissionPolicyBinding';

async function cli(flags: string[] = []): Promise<object[]> {
  const result = await runCli(['policy', '-o', 'json', ...flags]);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { items: object[] }).items;
}

/** The chart's policy objects with only our part-of label, as the command writes them. */
function chartPolicy(values: object, namespace = 'lxcfs'): object[] {
  return renderChart({ namespace, values: [values] })
    .map((r) => r.object)
    .filter(isPolicy)
    .map((o) => ({
      ...o,
      metadata: { ...o.metadata, labels: { 'app.kubernetes.io/part-of': 'lxcfs-webhook' } },
    }));
}

describe('policy mode in the chart and the kustomize component', () => {
  it('the chart template is what policy-template.ts writes (UPDATE_CHART_POLICY=1 rewrites it)', () => {
    if (process.env.UPDATE_CHART_POLICY === '1') writeFileSync(TEMPLATE, policyTemplate());
    assert.equal(readFileSync(TEMPLATE, 'utf8'), policyTemplate());
  });

  it('renders nothing unless policy.enabled', () => {
    assert.deepEqual(chartPolicy({}), []);
  });

  it('policy.enabled renders what `lxcfs-webhook policy` prints', async () => {
    assert.deepEqual(chartPolicy({ policy: { enabled: true } }), await cli());
  });

  it('with another namespace, lxcfs root and the mount-lxcfs label, as the flags do', async () => {
    assert.deepEqual(
      chartPolicy(
        {
          policy: { enabled: true },
          injection: {
            lxcfsRoot: '/run/lxcfs',
            mountLxcfsLabel: true,
            excludedNamespaces: ['kube-system', 'infra'],
          },
        },
        'platform',
      ),
      await cli([
        '--namespace',
        'platform',
        '--lxcfs-root',
        '/run/lxcfs',
        '--mount-lxcfs-label',
        '--excluded-namespaces',
        'kube-system,infra',
      ]),
    );
  });

  it('refuses injection.files, which the template cannot resolve, naming the fix', () => {
    assert.throws(
      () =>
        renderRaw({ values: [{ policy: { enabled: true }, injection: { files: ['meminfo'] } }] }),
      (err: unknown) =>
        err instanceof RenderError && /leave injection\.files empty/.test(err.message),
    );
  });

  it('the kustomize component holds what `lxcfs-webhook policy` prints with its defaults', async () => {
    const file = join(repoRoot, 'deploy', 'components', 'mutating-admission-policy', 'policy.yaml');
    const objects = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as object);
    assert.deepEqual(objects, await cli());
  });
});
