// `lxcfs-webhook policy`: prints the MutatingAdmissionPolicy and its bindings that apply the webhook's
// rules inside the API server (CEL), for `kubectl apply -f -`. Nothing is written but stdout.
import { stringify } from 'yaml';
import {
  INSTALL,
  MOUNT_LXCFS_LABEL,
  NAMESPACE_LABEL,
  POD_LABEL,
  SYSTEM_NAMESPACES,
} from '../config/defaults.js';
import { POLICY_API_VERSIONS, policyObjects, type PolicyOptions } from '../policy/policy.js';
import type { Command } from './command.js';
import { FlagSet, helpText, wrap } from './flags.js';
import { podRuleFlags, settingsFrom } from './shared-flags.js';
import { choice, kubernetesName, text } from './values.js';

const names = text('LIST', 'comma-separated namespace names');

const flags = new FlagSet('policy', {
  ...podRuleFlags,
  namespace: {
    kind: kubernetesName,
    default: INSTALL.namespace,
    help: "the install's own namespace, never selected",
  },
  'excluded-namespaces': {
    kind: names,
    default: SYSTEM_NAMESPACES.join(','),
    help: 'further namespaces never selected',
  },
  'mount-lxcfs-label': {
    kind: 'switch',
    help: `also select namespaces labelled ${MOUNT_LXCFS_LABEL.key}=${MOUNT_LXCFS_LABEL.value}, as ${INSTALL.mountLxcfsComponent} does for the webhook`,
  },
  'api-version': {
    kind: choice(POLICY_API_VERSIONS),
    default: POLICY_API_VERSIONS[0],
    help: 'v1 for Kubernetes 1.36 and later; v1beta1 for 1.34 and 1.35 (MutatingAdmissionPolicy feature gate and API turned on)',
  },
  output: {
    kind: choice(['yaml', 'json']),
    short: 'o',
    default: 'yaml',
    help: 'format of the objects printed',
  },
});

const usage = helpText(flags, {
  synopsis: 'policy [flags]',
  about: [
    ...wrap(
      'Prints a MutatingAdmissionPolicy and its bindings that mount the lxcfs files in the pods the webhook ' +
        `would select (namespace label ${NAMESPACE_LABEL.key}=enabled or required, pod label ${POD_LABEL}=enabled), ` +
        'by the same rules as far as CEL can apply them: no webhook process, no certificate, no outage. It writes ' +
        'no status annotation and no warnings (README, "Policy mode").',
      0,
    ),
    '',
    '  lxcfs-webhook policy | kubectl apply -f -',
  ].join('\n'),
});

export const command: Command<{ options: PolicyOptions; output: 'yaml' | 'json' }> = {
  name: 'policy',
  summary: 'print a MutatingAdmissionPolicy: the injection rules in CEL, run by the API server',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    const excluded = values['excluded-namespaces']
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '');
    for (const name of excluded) kubernetesName.parse(name);
    return {
      output: values.output,
      options: {
        settings: settingsFrom(values),
        namespace: values.namespace,
        excludedNamespaces: excluded,
        namespaceLabel: NAMESPACE_LABEL.key,
        podLabel: POD_LABEL,
        mountLxcfsLabel: values['mount-lxcfs-label'],
        apiVersion: values['api-version'],
      },
    };
  },
  async run({ options, output }) {
    const objects = policyObjects(options);
    process.stdout.write(
      output === 'json'
        ? `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`
        : objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'),
    );
    return 0;
  },
};
