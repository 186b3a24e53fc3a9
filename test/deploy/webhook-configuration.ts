// Checks of a rendered MutatingWebhookConfiguration that a schema cannot make:
//   1. what the API server's validation (pkg/apis/admissionregistration/validation) refuses, field by field;
//   2. the selectors are exactly src/audit/selection.ts's, so `audit` judges pods by the installed rules;
//   3. for every combination of the labels the selectors read, at most one entry matches, and it is
//      the one the README promises (evaluated with an independent label-selector implementation).
import assert from 'node:assert/strict';
import {
  HOSTPATH_REJECTING_LEVELS,
  INSTALL,
  MOUNT_LXCFS_LABEL,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_REQUIRED,
  NAMESPACE_NAME_LABEL,
  POD_LABEL,
  POD_SECURITY_ENFORCE_LABEL,
} from '../../src/config/defaults.js';
import {
  EXCLUDED_NAMESPACES,
  webhookEntries,
  webhookFor,
  type SelectionOptions,
} from '../../src/audit/selection.js';
import { labelsMatch, type Selector } from '../helpers/label-selector.js';
import type { K8sObject } from './render.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function checkQualifiedName(key: string, what: string): void {
  const [prefix, name] = key.includes('/')
    ? (key.split('/', 2) as [string, string])
    : [undefined, key];
  if (prefix !== undefined)
    assert.ok(DNS_SUBDOMAIN.test(prefix) && prefix.length <= 253, `${what}: prefix of ${key}`);
  assert.ok(LABEL_NAME.test(name) && name.length <= 63, `${what}: name part of ${key}`);
}

function checkSelector(selector: Selector | undefined, what: string): void {
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    checkQualifiedName(key, what);
    assert.ok(
      value === '' || (LABEL_NAME.test(value) && value.length <= 63),
      `${what}: label value ${value}`,
    );
  }
  for (const { key, operator, values } of selector?.matchExpressions ?? []) {
    checkQualifiedName(key, what);
    if (operator === 'In' || operator === 'NotIn')
      assert.ok(
        values !== undefined && values.length > 0,
        `${what}: ${key} ${operator} needs values`,
      );
    else if (operator === 'Exists' || operator === 'DoesNotExist')
      assert.ok(!values?.length, `${what}: ${key} ${operator} takes no values`);
    else assert.fail(`${what}: operator ${operator}`);
    for (const value of values ?? [])
      assert.ok(
        value === '' || (LABEL_NAME.test(value) && value.length <= 63),
        `${what}: value ${value} of ${key}`,
      );
  }
}

/** The wildcard must stand alone in a rule's list (validation.go: validateRule). */
function checkList(list: unknown, what: string, allowed?: readonly string[]): void {
  assert.ok(Array.isArray(list) && list.length > 0, `${what} must be a non-empty list`);
  if (list.includes('*')) assert.equal(list.length, 1, `${what}: '*' must be the only entry`);
  if (allowed)
    for (const item of list)
      assert.ok(
        allowed.includes(item as string),
        `${what}: ${String(item)} is not one of ${allowed.join(', ')}`,
      );
  assert.equal(new Set(list).size, list.length, `${what}: duplicates`);
}

/** What the API server's validation of admissionregistration.k8s.io/v1 refuses. */
export function checkApiServerValidation(mwc: K8sObject): void {
  const names = mwc.webhooks.map((h: any) => h.name);
  assert.equal(new Set(names).size, names.length, 'webhook names are unique (required in v1)');
  for (const hook of mwc.webhooks) {
    const what = `webhook ${hook.name}`;
    assert.ok(
      DNS_SUBDOMAIN.test(hook.name) && hook.name.length <= 253 && hook.name.split('.').length >= 3,
      `${what}: name must be a fully qualified domain of three or more segments`,
    );
    checkList(hook.admissionReviewVersions, `${what}: admissionReviewVersions`);
    assert.ok(
      hook.admissionReviewVersions.some((v: string) => ['v1', 'v1beta1'].includes(v)),
      `${what}: a version the API server speaks`,
    );
    for (const v of hook.admissionReviewVersions)
      assert.ok(DNS_LABEL.test(v), `${what}: version ${v}`);
    const service = hook.clientConfig.service;
    assert.ok(
      (service === undefined) !== (hook.clientConfig.url === undefined),
      `${what}: exactly one of url and service`,
    );
    assert.ok(
      DNS_LABEL.test(service.name) && DNS_LABEL.test(service.namespace),
      `${what}: service name and namespace`,
    );
    assert.ok(
      service.path.startsWith('/') && !service.path.split('/').slice(1).includes(''),
      `${what}: service path`,
    );
    assert.ok(
      Number.isInteger(service.port) && service.port >= 1 && service.port <= 65535,
      `${what}: service port`,
    );
    if (hook.clientConfig.caBundle !== undefined)
      assert.match(hook.clientConfig.caBundle, /^[A-Za-z0-9+/]+=*$/, `${what}: caBundle is base64`);
    for (const [index, rule] of hook.rules.entries()) {
      const where = `${what}: rules[${index}]`;
      checkList(rule.operations, `${where}.operations`, [
        '*',
        'CREATE',
        'UPDATE',
        'DELETE',
        'CONNECT',
      ]);
      checkList(rule.apiGroups, `${where}.apiGroups`);
      checkList(rule.apiVersions, `${where}.apiVersions`);
      checkList(rule.resources, `${where}.resources`);
      for (const resource of rule.resources)
        assert.match(
          resource,
          /^(\*|[a-z0-9.-]+)(\/(\*|[a-z0-9.-]+))?$/,
          `${where}: resource ${resource}`,
        );
      assert.ok(['Cluster', 'Namespaced', '*', undefined].includes(rule.scope), `${where}.scope`);
    }
    assert.ok(['Ignore', 'Fail'].includes(hook.failurePolicy), `${what}: failurePolicy`);
    assert.ok(['Exact', 'Equivalent'].includes(hook.matchPolicy), `${what}: matchPolicy`);
    assert.ok(
      ['None', 'NoneOnDryRun'].includes(hook.sideEffects),
      `${what}: sideEffects (v1 allows only None, NoneOnDryRun)`,
    );
    assert.ok(
      Number.isInteger(hook.timeoutSeconds) &&
        hook.timeoutSeconds >= 1 &&
        hook.timeoutSeconds <= 30,
      `${what}: timeoutSeconds 1..30`,
    );
    assert.ok(
      ['Never', 'IfNeeded'].includes(hook.reinvocationPolicy),
      `${what}: reinvocationPolicy`,
    );
    checkSelector(hook.namespaceSelector, `${what}: namespaceSelector`);
    checkSelector(hook.objectSelector, `${what}: objectSelector`);
  }
}

/** The rendered entries are the module's, field for field, in the same order. */
export function checkSameAsSelectionModule(mwc: K8sObject, options: SelectionOptions): void {
  assert.deepEqual(
    mwc.webhooks.map((h: any) => ({
      name: h.name,
      failurePolicy: h.failurePolicy,
      namespaceSelector: h.namespaceSelector,
      objectSelector: h.objectSelector,
    })),
    webhookEntries(options).map(({ name, failurePolicy, namespaceSelector, objectSelector }) => ({
      name,
      failurePolicy,
      namespaceSelector,
      objectSelector,
    })),
    'deploy/base/mutating-webhook.yaml and src/audit/selection.ts select the same pods',
  );
}

/** The rules as the README states them, written out once more so that both sides are checked against them. */
interface Case {
  ns: string;
  nsLabel: string | undefined;
  mountLxcfs: string | undefined;
  level: string | undefined;
  podLabel: string | undefined;
}

function promised(
  options: SelectionOptions,
  { ns, nsLabel, mountLxcfs, level, podLabel }: Case,
): string | undefined {
  const [enabled, podLabelEntry, required, mountLxcfsEntry] = INSTALL.webhooks;
  if (EXCLUDED_NAMESPACES.includes(ns) || HOSTPATH_REJECTING_LEVELS.includes(level ?? ''))
    return undefined;
  if (podLabel === 'disabled') return undefined;
  if (nsLabel === 'required') return required;
  if (nsLabel === 'enabled') return enabled;
  if (options.mountLxcfsLabel && mountLxcfs === 'enabled') return mountLxcfsEntry;
  return podLabel === 'enabled' ? podLabelEntry : undefined;
}

/** Every combination: at most one entry, the promised one, and the module's webhookFor agrees. Returns how many were checked. */
export function checkEntriesPartitionPods(mwc: K8sObject, options: SelectionOptions): number {
  const set = <T>(key: string, value: T | undefined) =>
    value === undefined ? {} : { [key]: value };
  let checked = 0;
  for (const ns of [...EXCLUDED_NAMESPACES, 'default', 'shop']) {
    for (const nsLabel of [
      undefined,
      NAMESPACE_LABEL.value,
      NAMESPACE_LABEL_REQUIRED,
      'disabled',
      'Enabled',
      '',
    ]) {
      for (const mountLxcfs of [undefined, MOUNT_LXCFS_LABEL.value, 'disabled']) {
        for (const level of [undefined, 'privileged', ...HOSTPATH_REJECTING_LEVELS]) {
          for (const podLabel of [undefined, 'enabled', 'disabled', 'true', '']) {
            const nsLabels = {
              [NAMESPACE_NAME_LABEL]: ns,
              ...set(NAMESPACE_LABEL.key, nsLabel),
              ...set(MOUNT_LXCFS_LABEL.key, mountLxcfs),
              ...set(POD_SECURITY_ENFORCE_LABEL, level),
            };
            const podLabels = set(POD_LABEL, podLabel) as Record<string, string>;
            const matched = mwc.webhooks.filter(
              (h: any) =>
                labelsMatch(h.namespaceSelector, nsLabels) &&
                labelsMatch(h.objectSelector, podLabels),
            );
            const what = `namespace ${JSON.stringify(nsLabels)}, pod ${JSON.stringify(podLabels)}`;
            assert.ok(
              matched.length <= 1,
              `${what}: called by ${matched.map((h: any) => h.name).join(' and ')}`,
            );
            const expectedName = promised(options, { ns, nsLabel, mountLxcfs, level, podLabel });
            assert.equal(matched[0]?.name, expectedName, `${what}: rendered configuration`);
            // webhookFor adds the name label itself, as the API server does: give it the labels without it.
            const { [NAMESPACE_NAME_LABEL]: _, ...withoutName } = nsLabels;
            assert.equal(
              webhookFor({ name: ns, labels: withoutName }, podLabels, webhookEntries(options))
                ?.name,
              expectedName,
              `${what}: webhookFor`,
            );
            checked++;
          }
        }
      }
    }
  }
  return checked;
}
