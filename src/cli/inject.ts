// `lxcfs-webhook inject -f FILE`: the webhook's injection rules applied to manifests before they reach
// a cluster. Manifests go to stdout, one line per object to stderr. Nothing is written to stdout
// unless every file was read and injected, so a pipe into `kubectl apply` never gets half a result.
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { configError, LxcfsWebhookError } from '../errors.js';
import { injectManifests } from '../manifest/inject.js';
import { SUPPORTED_KINDS } from '../manifest/workloads.js';
import { parseManifestFile, renderJson, renderYaml, type ManifestFile } from '../manifest/yaml-documents.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Command } from './command.js';
import { parseFlags, settingsFrom, settingsOptions, settingsUsage } from './flags.js';

const STDIN = '-';
const OUTPUT_FORMATS = ['yaml', 'json'] as const;

const usage = `usage: lxcfs-webhook inject -f FILE [-f FILE ...] [flags]

Adds the lxcfs volumes and mounts to every pod and pod template in Kubernetes manifests, by the
webhook's rules, and prints the manifests; other objects are printed unchanged. One line per object
on stderr says what was done. Objects with a pod: ${SUPPORTED_KINDS.join(', ')},
and the items of a List.

  lxcfs-webhook inject -f examples/web.yaml | kubectl apply -f -

flags:
  -f, --filename FILE   manifest to read, YAML or JSON, several documents allowed; - reads stdin;
                        repeat for more files
  -o, --output FORMAT   yaml (default) or json
${settingsUsage}`;

const READ_PROBLEMS: Record<string, string> = {
  ENOENT: 'file not found; check the path',
  EISDIR: 'is a directory; pass each manifest file with its own -f',
  EACCES: 'permission denied',
};

async function readManifest(path: string): Promise<ManifestFile> {
  if (path === STDIN) return parseManifestFile('stdin', await text(process.stdin));
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (err) {
    const problem = READ_PROBLEMS[String((err as NodeJS.ErrnoException).code)];
    if (problem === undefined) throw err;
    throw new LxcfsWebhookError('E_MANIFEST', `-f ${path}: ${problem}`, { cause: err });
  }
  return parseManifestFile(path, content);
}

interface InjectOptions {
  paths: string[];
  output: (typeof OUTPUT_FORMATS)[number];
  settings: InjectionSettings;
}

export const command: Command<InjectOptions> = {
  name: 'inject',
  summary: 'add lxcfs mounts to the pods in Kubernetes manifests (YAML/JSON) for kubectl apply',
  usage,
  parse(args) {
    const { values } = parseFlags('inject', {
      args,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        output: { type: 'string', short: 'o', default: 'yaml' },
        ...settingsOptions,
      },
    });
    const paths = values.filename ?? [];
    if (paths.length === 0) throw configError('no manifest given; name one with -f FILE, or -f - to read stdin');
    const output = values.output as (typeof OUTPUT_FORMATS)[number];
    if (!OUTPUT_FORMATS.includes(output)) throw configError(`-o has value "${values.output}"; expected yaml or json`);
    return { paths, output, settings: settingsFrom(values) };
  },
  async run({ paths, output, settings }) {
    const files: ManifestFile[] = [];
    for (const path of paths) files.push(await readManifest(path));
    const reports = files.flatMap((file) => injectManifests(file, settings));

    process.stdout.write(output === 'json' ? renderJson(files) : renderYaml(files));
    for (const report of reports) {
      process.stderr.write(`${report.object}: ${report.summary}\n`);
      for (const warning of report.warnings) process.stderr.write(`${report.object}: warning: ${warning}\n`);
    }
    return 0;
  },
};
