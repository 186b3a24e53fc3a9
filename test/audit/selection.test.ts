// The selection module on the cases the README names. Every label combination, against the rendered
// deploy/ configuration and an independent selector evaluator, is in test/deploy (webhook-configuration.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namespaceProblem, webhookFor } from '../../src/audit/selection.js';

const mode = (
  nsLabels: Record<string, string>,
  podLabels: Record<string, string> = {},
  name = 'shop',
) => webhookFor({ name, labels: nsLabels }, podLabels)?.mode;

describe('webhookFor', () => {
  it('sends pods of required namespaces to the fail-closed entry, enabled ones to the ignoring one', () => {
    assert.equal(
      webhookFor({ name: 'bank', labels: { 'lxcfs-admission-webhook': 'required' } }, {})
        ?.failurePolicy,
      'Fail',
    );
    assert.equal(
      webhookFor({ name: 'shop', labels: { 'lxcfs-admission-webhook': 'enabled' } }, {})
        ?.failurePolicy,
      'Ignore',
    );
  });
  it('gives a pod labelled inject=enabled exactly one entry in every mode', () => {
    assert.equal(
      mode({ 'lxcfs-admission-webhook': 'required' }, { 'lxcfs-webhook.io/inject': 'enabled' }),
      'required',
    );
    assert.equal(
      mode({ 'lxcfs-admission-webhook': 'enabled' }, { 'lxcfs-webhook.io/inject': 'enabled' }),
      'enabled',
    );
    assert.equal(mode({}, { 'lxcfs-webhook.io/inject': 'enabled' }), 'pod-label');
  });
  it('honours the pod opt-out label in every mode', () => {
    for (const ns of [
      { 'lxcfs-admission-webhook': 'required' },
      { 'lxcfs-admission-webhook': 'enabled' },
      {},
    ] as Array<Record<string, string>>) {
      assert.equal(
        mode(ns, { 'lxcfs-webhook.io/inject': 'disabled' }),
        undefined,
        JSON.stringify(ns),
      );
    }
  });
  it('never selects system namespaces, ours, or Pod Security baseline/restricted, even labelled required', () => {
    for (const name of ['kube-system', 'kube-public', 'kube-node-lease', 'lxcfs']) {
      assert.equal(mode({ 'lxcfs-admission-webhook': 'required' }, {}, name), undefined, name);
      assert.equal(mode({}, { 'lxcfs-webhook.io/inject': 'enabled' }, name), undefined, name);
    }
    assert.equal(
      mode({
        'lxcfs-admission-webhook': 'required',
        'pod-security.kubernetes.io/enforce': 'baseline',
      }),
      undefined,
    );
  });
  it('excludes by name even when the input lacks the label the API server sets, or has it wrong', () => {
    assert.equal(
      mode(
        { 'lxcfs-admission-webhook': 'enabled', 'kubernetes.io/metadata.name': 'shop' },
        {},
        'kube-system',
      ),
      undefined,
    );
  });
});

describe('namespaceProblem', () => {
  it('names namespaces that ask for lxcfs and do not get it, and why', () => {
    assert.equal(namespaceProblem('shop', { 'lxcfs-admission-webhook': 'enabled' }), undefined);
    assert.equal(namespaceProblem('plain', {}), undefined);
    assert.match(
      namespaceProblem('shop', { 'lxcfs-admission-webhook': 'yes' })!,
      /=yes selects nothing; expected enabled or required/,
    );
    assert.match(
      namespaceProblem('lxcfs', { 'lxcfs-admission-webhook': 'required' })!,
      /never serves lxcfs/,
    );
    assert.match(
      namespaceProblem('shop', {
        'lxcfs-admission-webhook': 'required',
        'pod-security.kubernetes.io/enforce': 'restricted',
      })!,
      /Pod Security level restricted/,
    );
  });
});
