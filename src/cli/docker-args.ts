// `lxcfs-webhook docker-args`: the `-v` flags that give a plain `docker run` / `podman run` container
// the same lxcfs files the webhook mounts into pods:
//
//   docker run $(lxcfs-webhook docker-args) nginx
import { existsSync } from 'node:fs';
import { hostPathOf } from '../inject/volumes.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Command } from './command.js';
import { FlagSet, helpText } from './flags.js';
import { injectionFlags, settingsFrom } from './shared-flags.js';
import { choice, lxcfsRoot, narrowed } from './values.js';

const flags = new FlagSet('docker-args', {
  'format': { kind: choice(['lines', 'inline']), default: 'lines', help: 'lines: one -v flag per line; inline: all on one line' },
  ...injectionFlags,
  'lxcfs-root': {
    ...injectionFlags['lxcfs-root'],
    // $(…) splits the output on whitespace, and -v splits its value on colons.
    kind: narrowed(lxcfsRoot, (root) => !/[\s:]/.test(root),
      'an absolute directory without spaces or colons (docker -v flags cannot carry them)'),
  },
});

const usage = helpText(flags, {
  synopsis: 'docker-args [flags]',
  about: `Prints the docker/podman run flags that mount the lxcfs files read-only at their usual paths:

  docker run $(lxcfs-webhook docker-args) nginx`,
});

interface DockerArgsOptions {
  format: 'lines' | 'inline';
  settings: InjectionSettings;
}

export const command: Command<DockerArgsOptions> = {
  name: 'docker-args',
  summary: 'print the -v flags that mount the lxcfs files into a docker/podman run container',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    return { format: values.format, settings: settingsFrom(values) };
  },
  async run({ format, settings }) {
    const flags = settings.files.map((file) => `-v ${hostPathOf(settings.lxcfsRoot, file)}:${file}:ro`);
    process.stdout.write(`${flags.join(format === 'lines' ? '\n' : ' ')}\n`);

    const missing = settings.files.map((file) => hostPathOf(settings.lxcfsRoot, file)).filter((path) => !existsSync(path));
    if (missing.length > 0) {
      process.stderr.write(
        `lxcfs-webhook docker-args: warning: ${missing.length} of ${settings.files.length} files are missing on this machine ` +
        `(${missing[0]}${missing.length > 1 ? ', ...' : ''}); start lxcfs first: docker would create empty directories in their place\n`,
      );
    }
    return 0;
  },
};
