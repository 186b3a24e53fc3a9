// `lxcfs-webhook inject -f FILE`: the webhook's injection rules applied to manifests before they reach
// a cluster. Manifests go to stdout, one line per object to stderr. Nothing is written to stdout
// unless every file was read and injected, so a pipe into `kubectl apply` never gets half a result.
import { injectManifests } from '../manifest/inject.js';
import { SUPPORTED_KINDS } from '../manifest/workloads.js';
import {
  parseManifestFile,
  renderJson,
  renderYaml,
  type ManifestFile,
} from '../manifest/yaml-documents.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Command } from './command.js';
import { FlagSet, helpText, wrap } from './flags.js';
import { readInput, STDIN } from './input.js';
import { podRuleFlags, settingsFrom } from './shared-flags.js';
import { choice, path } from './values.js';

const flags = new FlagSet('inject', {
  filename: {
    kind: path('FILE'),
    short: 'f',
    repeatable: true,
    help: 'manifest to read, YAML or JSON, several documents allowed; - reads stdin; repeat for more files',
  },
  output: {
    kind: choice(['yaml', 'json']),
    short: 'o',
    default: 'yaml',
    help: 'format of the manifests printed',
  },
  ...podRuleFlags,
});

const usage = helpText(flags, {
  synopsis: 'inject -f FILE [-f FILE ...] [flags]',
  about: [
    ...wrap(
      'Adds the lxcfs volumes and mounts to every pod and pod template in Kubernetes manifests, by the ' +
        "webhook's rules, and prints the manifests; other objects are printed unchanged. One line per object " +
        `on stderr says what was done. Objects with a pod: ${SUPPORTED_KINDS.join(', ')}, and the items of a List.`,
      0,
    ),
    '',
    '  lxcfs-webhook inject -f examples/web.yaml | kubectl apply -f -',
  ].join('\n'),
});

async function readManifest(path: string): Promise<ManifestFile> {
  return parseManifestFile(path === STDIN ? 'stdin' : path, await readInput(path));
}

interface InjectOptions {
  paths: string[];
  output: 'yaml' | 'json';
  settings: InjectionSettings;
}

export const command: Command<InjectOptions> = {
  name: 'inject',
  summary: 'add lxcfs mounts to the pods in Kubernetes manifests (YAML/JSON) for kubectl apply',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    if (values.filename.length === 0)
      throw flags.usageError('no manifest given; name one with -f FILE, or -f - to read stdin');
    return { paths: values.filename, output: values.output, settings: settingsFrom(values) };
  },
  async run({ paths, output, settings }) {
    const files: ManifestFile[] = [];
    for (const path of paths) files.push(await readManifest(path));
    const reports = files.flatMap((file) => injectManifests(file, settings));

    process.stdout.write(output === 'json' ? renderJson(files) : renderYaml(files));
    for (const report of reports) {
      process.stderr.write(`${report.object}: ${report.summary}\n`);
      for (const warning of report.warnings)
        process.stderr.write(`${report.object}: warning: ${warning}\n`);
    }
    return 0;
  },
};
