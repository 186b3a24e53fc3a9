// Which pods the API server sends to the webhook: the MutatingWebhookConfiguration's four entries as
// data, and `webhookFor`, which evaluates them the way the API server does. deploy/base/mutating-webhook.yaml
// writes the same selectors by hand; test/deploy (webhook-configuration.ts) renders every overlay with
// the real kustomize and checks every label combination against these, so the audit and the webhook
// cannot disagree on which pods are in scope. Pure.
import {
  HOSTPATH_REJECTING_LEVELS,
  INSTALL,
  MOUNT_LXCFS_LABEL,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_REQUIRED,
  NAMESPACE_NAME_LABEL,
  POD_LABEL,
  POD_LABEL_DISABLED,
  POD_LABEL_ENABLED,
  POD_SECURITY_ENFORCE_LABEL,
  SYSTEM_NAMESPACES,
} from '../config/defaults.js';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** `required`: fail-closed namespaces; `enabled`: namespaces that opted in; `pod-label`: pods that opted in elsewhere. */
export type WebhookMode = 'required' | 'enabled' | 'pod-label';

export interface WebhookEntry {
  name: string;
  mode: WebhookMode;
  failurePolicy: 'Fail' | 'Ignore';
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
}

/** Never selected, in every entry: the control plane, our own namespace (its recovery), and namespaces whose Pod Security would reject hostPaths. */
export const EXCLUDED_NAMESPACES: readonly string[] = [...SYSTEM_NAMESPACES, INSTALL.namespace];
const exclusions: LabelSelectorRequirement[] = [
  { key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: [...EXCLUDED_NAMESPACES] },
  { key: POD_SECURITY_ENFORCE_LABEL, operator: 'NotIn', values: [...HOSTPATH_REJECTING_LEVELS] },
];
const podNotOptedOut: LabelSelector = {
  matchExpressions: [{ key: POD_LABEL, operator: 'NotIn', values: [POD_LABEL_DISABLED] }],
};
const namespaceMode = (operator: 'In' | 'NotIn', values: string[]): LabelSelector => ({
  matchExpressions: [{ key: NAMESPACE_LABEL.key, operator, values }, ...exclusions],
});

const [enabledName, podLabelName, requiredName, mountLxcfsName] = INSTALL.webhooks;

/** Options of the install that change which pods are selected. */
export interface SelectionOptions {
  /** The component INSTALL.mountLxcfsComponent is installed: namespaces labelled mount-lxcfs=enabled are selected too. */
  mountLxcfsLabel: boolean;
}

/**
 * The entries in the order deploy/ lists them. They never overlap: a namespace label has one value, the
 * mount-lxcfs entry skips namespaces either mode of our label selects, and the pod-label entry skips
 * every namespace some namespace entry selects, so a pod is sent at most once.
 */
export function webhookEntries(options: SelectionOptions): readonly WebhookEntry[] {
  const mountLxcfs = (operator: 'In' | 'NotIn'): LabelSelectorRequirement => ({
    key: MOUNT_LXCFS_LABEL.key,
    operator,
    values: [MOUNT_LXCFS_LABEL.value],
  });
  // Without the component, the entry is installed but selects nothing: the API server sets
  // kubernetes.io/metadata.name on every namespace, so DoesNotExist never holds (no call is ever made).
  // Keeping the entry in the base keeps the webhook names, which `certs` patches by name, the same.
  const off: LabelSelectorRequirement[] = options.mountLxcfsLabel
    ? []
    : [{ key: NAMESPACE_NAME_LABEL, operator: 'DoesNotExist' }];
  const notMountLxcfs: LabelSelectorRequirement[] = options.mountLxcfsLabel
    ? [mountLxcfs('NotIn')]
    : [];
  const podLabelNamespaces = namespaceMode('NotIn', [
    NAMESPACE_LABEL.value,
    NAMESPACE_LABEL_REQUIRED,
  ]);
  return [
    {
      name: enabledName,
      mode: 'enabled',
      failurePolicy: 'Ignore',
      namespaceSelector: namespaceMode('In', [NAMESPACE_LABEL.value]),
      objectSelector: podNotOptedOut,
    },
    {
      name: podLabelName,
      mode: 'pod-label',
      failurePolicy: 'Ignore',
      namespaceSelector: {
        matchExpressions: [...podLabelNamespaces.matchExpressions!, ...notMountLxcfs],
      },
      objectSelector: {
        matchExpressions: [{ key: POD_LABEL, operator: 'In', values: [POD_LABEL_ENABLED] }],
      },
    },
    {
      name: requiredName,
      mode: 'required',
      failurePolicy: 'Fail',
      namespaceSelector: namespaceMode('In', [NAMESPACE_LABEL_REQUIRED]),
      objectSelector: podNotOptedOut,
    },
    {
      // The same mode as `enabled`: a namespace that opted in, admitted without lxcfs while we are down.
      name: mountLxcfsName,
      mode: 'enabled',
      failurePolicy: 'Ignore',
      namespaceSelector: {
        matchExpressions: [...off, mountLxcfs('In'), ...podLabelNamespaces.matchExpressions!],
      },
      objectSelector: podNotOptedOut,
    },
  ];
}

/** The entries of the default install (without the mount-lxcfs component). */
export const WEBHOOK_ENTRIES: readonly WebhookEntry[] = webhookEntries({ mountLxcfsLabel: false });

/** Kubernetes label-selector semantics: every requirement holds; NotIn and DoesNotExist hold for an absent key. */
export function selectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  const has = (key: string) => Object.hasOwn(labels, key);
  return (
    Object.entries(selector.matchLabels ?? {}).every(
      ([key, value]) => has(key) && labels[key] === value,
    ) &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      switch (operator) {
        case 'In':
          return has(key) && values.includes(labels[key]!);
        case 'NotIn':
          return !has(key) || !values.includes(labels[key]!);
        case 'Exists':
          return has(key);
        case 'DoesNotExist':
          return !has(key);
      }
    })
  );
}

/**
 * A namespace's labels as the API server evaluates them: it sets kubernetes.io/metadata.name to the
 * name on every namespace (and overwrites any other value), so a namespace read from a file without it
 * is still excluded by name.
 */
export function namespaceLabels(
  name: string,
  labels: Readonly<Record<string, string>>,
): Record<string, string> {
  return { ...labels, [NAMESPACE_NAME_LABEL]: name };
}

/**
 * For one namespace, the function that gives the entry the API server calls for a pod CREATE there
 * (undefined when none selects it). The namespace's part is evaluated once, since an audit asks for
 * every pod of the namespace.
 */
export function webhookIn(
  namespace: { name: string; labels: Readonly<Record<string, string>> },
  installed: readonly WebhookEntry[] = WEBHOOK_ENTRIES,
): (podLabels: Readonly<Record<string, string>>) => WebhookEntry | undefined {
  const nsLabels = namespaceLabels(namespace.name, namespace.labels);
  const entries = installed.filter((entry) => selectorMatches(entry.namespaceSelector, nsLabels));
  return (podLabels) => entries.find((entry) => selectorMatches(entry.objectSelector, podLabels));
}

/** The entry the API server calls for a pod CREATE, or undefined when none selects it. */
export function webhookFor(
  namespace: { name: string; labels: Readonly<Record<string, string>> },
  podLabels: Readonly<Record<string, string>>,
  installed: readonly WebhookEntry[] = WEBHOOK_ENTRIES,
): WebhookEntry | undefined {
  return webhookIn(namespace, installed)(podLabels);
}

/**
 * Why a namespace that asks for lxcfs is not served, or undefined when it is served or does not ask:
 * the label names no mode, or an exclusion wins. The audit reports these, since their pods run
 * without lxcfs whatever the webhook does.
 */
export function namespaceProblem(
  name: string,
  labels: Readonly<Record<string, string>>,
): string | undefined {
  const value = labels[NAMESPACE_LABEL.key];
  if (value === undefined) return undefined;
  const modes = [NAMESPACE_LABEL.value, NAMESPACE_LABEL_REQUIRED];
  if (!modes.includes(value)) {
    return `label ${NAMESPACE_LABEL.key}=${value} selects nothing; expected ${modes.join(' or ')}`;
  }
  if (EXCLUDED_NAMESPACES.includes(name)) {
    return `label ${NAMESPACE_LABEL.key}=${value} is ignored: the webhook never serves ${name}, so that it cannot block the control plane or its own recovery`;
  }
  const level = labels[POD_SECURITY_ENFORCE_LABEL];
  if (level !== undefined && HOSTPATH_REJECTING_LEVELS.includes(level)) {
    return `label ${NAMESPACE_LABEL.key}=${value} is ignored: Pod Security level ${level} (${POD_SECURITY_ENFORCE_LABEL}) would reject the hostPath volumes`;
  }
  return undefined;
}
