// `lxcfs-webhook audit`: finds running pods the webhook would change today (created while it was down,
// before it was installed, partly injected, or injected by someone else) from what `kubectl get` prints,
// and prints one command per owner that recreates them. Exit 0: nothing found; 1: something found;
// 2: input or flags it cannot use.
import { audit } from '../audit/audit.js';
import { addDocument, checkComplete, emptyInput, INPUT_HINT } from '../audit/input.js';
import { renderJson, renderTable } from '../audit/report.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { SelectionOptions } from '../audit/selection.js';
import { INSTALL, MOUNT_LXCFS_LABEL } from '../config/defaults.js';
import type { Command } from './command.js';
import { FlagSet, helpText, wrap } from './flags.js';
import { readInput, STDIN } from './input.js';
import { podRuleFlags, settingsFrom } from './shared-flags.js';
import { choice, path } from './values.js';

const flags = new FlagSet('audit', {
  filename: {
    kind: path('FILE'),
    short: 'f',
    repeatable: true,
    help:
      'JSON from kubectl get (a List of Namespaces, Pods and, to name Deployments, ReplicaSets); ' +
      '- reads stdin (the default without -f); repeat for more files',
  },
  output: {
    kind: choice(['table', 'json']),
    short: 'o',
    default: 'table',
    help: 'format of the report',
  },
  'mount-lxcfs-label': {
    kind: 'switch',
    help: `the install includes ${INSTALL.mountLxcfsComponent}: namespaces labelled ${MOUNT_LXCFS_LABEL.key}=${MOUNT_LXCFS_LABEL.value} are selected too`,
  },
  ...podRuleFlags,
});

const usage = helpText(flags, {
  synopsis: 'audit [-f FILE ...] [flags]   (or: kubectl lxcfs audit ...)',
  about: [
    ...wrap(
      'Finds running pods the webhook would change today: pods never injected (created while the webhook ' +
        'was down, or before it was installed), partially injected, mounting lxcfs from another root, or injected ' +
        'by another LXCFS injector. It applies the selection of the installed MutatingWebhookConfiguration ' +
        '(namespace label lxcfs-admission-webhook=enabled|required, pod label lxcfs-webhook.io/inject, excluded ' +
        "namespaces, Pod Security levels) and the webhook's own injection rules, and prints one command per owner " +
        "that recreates its pods. --lxcfs-root and --files must be the webhook's.",
      0,
    ),
    '',
    `  ${INPUT_HINT} | lxcfs-webhook audit`,
    '',
    'Exit status: 0 nothing found, 1 something found, 2 input it cannot use.',
  ].join('\n'),
});

interface AuditOptions {
  paths: string[];
  output: 'table' | 'json';
  settings: InjectionSettings;
  selection: SelectionOptions;
}

export const command: Command<AuditOptions> = {
  name: 'audit',
  summary: 'find running pods the webhook would change (admitted while it was down), with fixes',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    return {
      paths: values.filename.length > 0 ? values.filename : [STDIN],
      output: values.output,
      settings: settingsFrom(values),
      selection: { mountLxcfsLabel: values['mount-lxcfs-label'] },
    };
  },
  async run({ paths, output, settings, selection }) {
    const input = emptyInput();
    for (const path of paths)
      addDocument(input, path === STDIN ? 'stdin' : path, await readInput(path, INPUT_HINT));
    checkComplete(input);
    const report = audit(input, settings, selection);
    process.stdout.write(
      output === 'json' ? renderJson(report) : renderTable(report, settings.lxcfsRoot),
    );
    return report.pods.length > 0 || report.namespaces.length > 0 ? 1 : 0;
  },
};
