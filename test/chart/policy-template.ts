// Writes charts/lxcfs-webhook/templates/mutating-admission-policy.yaml from src/policy (the one source of
// the CEL): the objects `lxcfs-webhook policy` prints, with the chart's values put in where the command
// takes flags. test/chart/policy.test.ts keeps the file equal to this output (UPDATE_CHART_POLICY=1
// rewrites it) and renders it against the command's output.
import { stringify } from 'yaml';
import {
  DEFAULT_FILES,
  DEFAULT_LXCFS_ROOT,
  DEFAULT_SANDBOX_RUNTIME_CLASSES,
} from '../../src/config/defaults.js';
import { policyObjects, type PolicyOptions } from '../../src/policy/policy.js';

// Placeholders no real value contains, replaced by template expressions after YAML is written.
const ROOT = '/@@lxcfsRoot@@';
const EXCLUDED = '@@excludedNamespaces@@';
const NS_LABEL = 'lxcfs-webhook.io/namespace-label-placeholder';
const POD_LABEL = 'lxcfs-webhook.io/pod-label-placeholder';

function objects(mountLxcfsLabel: boolean): string {
  const options: PolicyOptions = {
    settings: {
      lxcfsRoot: ROOT,
      files: DEFAULT_FILES,
      sandboxRuntimeClasses: DEFAULT_SANDBOX_RUNTIME_CLASSES,
    },
    namespace: EXCLUDED,
    excludedNamespaces: [],
    namespaceLabel: NS_LABEL,
    podLabel: POD_LABEL,
    mountLxcfsLabel,
    apiVersion: 'admissionregistration.k8s.io/v1',
  };
  return policyObjects(options)
    .map((o) =>
      stringify(o, { lineWidth: 0 }).replace(
        /^metadata:\n  name: (.*)\n  labels:\n    app.kubernetes.io\/part-of: lxcfs-webhook\n/m,
        'metadata:\n  name: $1\n  labels:\n    {{- include "lxcfs-webhook.labels" . | nindent 4 }}\n',
      ),
    )
    .join('---\n')
    .replaceAll(`'"${ROOT}"'`, '{{ .Values.injection.lxcfsRoot | toJson | squote }}')
    .replace(
      /values:\n(\s+)- "?@@excludedNamespaces@@"?\n/g,
      'values: {{ concat .Values.injection.excludedNamespaces (list .Release.Namespace) | toJson }}\n',
    )
    .replaceAll(NS_LABEL, '{{ .Values.injection.namespaceLabel }}')
    .replaceAll(POD_LABEL, '{{ .Values.injection.podLabel }}');
}

export function policyTemplate(): string {
  return [
    '{{- /*',
    "Policy mode (policy.enabled): a MutatingAdmissionPolicy and its bindings that apply the webhook's rules",
    'in the API server (CEL, Kubernetes 1.36). Generated from src/policy by test/chart/policy-template.ts: do',
    'not edit by hand. It takes the default file list (injection.files must be empty). Not rendered in the',
    'uninstall step (uninstall.cleanNodes), which stops all injection before the nodes are cleaned.',
    '*/ -}}',
    '{{- if and .Values.policy.enabled (not .Values.uninstall.cleanNodes) }}',
    '{{- if .Values.injection.files }}',
    '{{- fail "policy.enabled mounts the default files: leave injection.files empty, or write the policy with `lxcfs-webhook policy --files ...`" }}',
    '{{- end }}',
    '{{- if .Values.injection.mountLxcfsLabel }}',
    objects(true).trimEnd(),
    '{{- else }}',
    objects(false).trimEnd(),
    '{{- end }}',
    '{{- end }}',
    '',
  ].join('\n');
}

/** `lxcfs-webhook policy` flags that match chart values (for the equality test). */
export const DEFAULT_ROOT = DEFAULT_LXCFS_ROOT;
