// `lxcfs-webhook audit`: finds running pods the webhook would change today (created while it was down,
// before it was installed, partly injected, or injected by someone else) from what `kubectl get` prints,
// and prints one command per owner that recreates them. Exit 0: nothing found; 1: something found;
// 2: input or flags it cannot use.
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { audit } from '../audit/audit.js';
import { addDocument, checkComplete, emptyInput, INPUT_HINT } from '../audit/input.js';
import { renderJson, renderTable } from '../audit/report.js';
import { configError, LxcfsWebhookError } from '../errors.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Command } from './command.js';
import { parseFlags, settingsFrom, settingsOptions, settingsUsage } from './flags.js';

const STDIN = '-';
const OUTPUT_FORMATS = ['table', 'json'] as const;

/** Every flag of `audit` in one place, so the unified flag parser can take them over as they are. */
export const auditFlags = {
  filename: { type: 'string', short: 'f', multiple: true },
  output: { type: 'string', short: 'o', default: 'table' },
  ...settingsOptions,
} as const;

const usage = `usage: lxcfs-webhook audit [-f FILE ...] [flags]
       kubectl lxcfs audit [-f FILE ...] [flags]

Finds running pods the webhook would change today: pods never injected (created while the webhook was
down, or before it was installed), partially injected, mounting lxcfs from another root, or injected
by another LXCFS injector. It applies the selection of the installed MutatingWebhookConfiguration
(namespace label lxcfs-admission-webhook=enabled|required, pod label lxcfs-webhook.io/inject, excluded
namespaces, Pod Security levels) and the webhook's own injection rules, and prints one command per
owner that recreates its pods.

  ${INPUT_HINT} | lxcfs-webhook audit

Exit status: 0 nothing found, 1 something found, 2 input it cannot use.

flags:
  -f, --filename FILE   JSON from kubectl get (a List of Namespaces, Pods and, to name Deployments,
                        ReplicaSets); - reads stdin (the default without -f); repeat for more files
  -o, --output FORMAT   table (default) or json
${settingsUsage}
                        (both must be the webhook's: the audit compares pods with what it would mount)`;

const READ_PROBLEMS: Record<string, string> = {
  ENOENT: 'file not found',
  EISDIR: 'is a directory; pass each file with its own -f',
  EACCES: 'permission denied',
};

async function readInput(path: string): Promise<string> {
  if (path === STDIN) {
    if (process.stdin.isTTY) throw configError(`nothing to read on stdin (a terminal); pipe \`${INPUT_HINT}\` into it, or give -f FILE`);
    return text(process.stdin);
  }
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const problem = READ_PROBLEMS[String((err as NodeJS.ErrnoException).code)];
    if (problem === undefined) throw err;
    throw new LxcfsWebhookError('E_MANIFEST', `-f ${path}: ${problem}`, { cause: err });
  }
}

interface AuditOptions {
  paths: string[];
  output: (typeof OUTPUT_FORMATS)[number];
  settings: InjectionSettings;
}

export const command: Command<AuditOptions> = {
  name: 'audit',
  summary: 'find running pods the webhook would change (admitted while it was down), with the fix per owner',
  usage,
  parse(args) {
    const { values } = parseFlags('audit', { args, options: auditFlags });
    const output = values.output as (typeof OUTPUT_FORMATS)[number];
    if (!OUTPUT_FORMATS.includes(output)) throw configError(`-o has value "${values.output}"; expected table or json`);
    return { paths: values.filename ?? [STDIN], output, settings: settingsFrom(values) };
  },
  async run({ paths, output, settings }) {
    const input = emptyInput();
    for (const path of paths) addDocument(input, path === STDIN ? 'stdin' : path, await readInput(path));
    checkComplete(input);
    const report = audit(input, settings);
    process.stdout.write(output === 'json' ? renderJson(report) : renderTable(report, settings.lxcfsRoot));
    return report.pods.length > 0 || report.namespaces.length > 0 ? 1 : 0;
  },
};
