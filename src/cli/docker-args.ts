// `lxcfs-webhook docker-args`: the `-v` flags that give a plain `docker run` / `podman run` container
// the same lxcfs files the webhook mounts into pods:
//
//   docker run $(lxcfs-webhook docker-args) nginx
import { existsSync } from 'node:fs';
import { configError } from '../errors.js';
import { hostPathOf } from '../inject/volumes.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Command } from './command.js';
import { parseFlags, settingsFrom, settingsOptions, settingsUsage } from './flags.js';

const FORMATS = ['lines', 'inline'] as const;

const usage = `usage: lxcfs-webhook docker-args [flags]

Prints the docker/podman run flags that mount the lxcfs files read-only at their usual paths:

  docker run $(lxcfs-webhook docker-args) nginx

flags:
  --format FORMAT       lines (default: one -v flag per line) or inline (all on one line)
${settingsUsage}`;

interface DockerArgsOptions {
  format: (typeof FORMATS)[number];
  settings: InjectionSettings;
}

export const command: Command<DockerArgsOptions> = {
  name: 'docker-args',
  summary: 'print the -v flags that mount the lxcfs files into a docker/podman run container',
  usage,
  parse(args) {
    const { values } = parseFlags('docker-args', {
      args,
      options: { format: { type: 'string', default: 'lines' }, ...settingsOptions },
    });
    const format = values.format as (typeof FORMATS)[number];
    if (!FORMATS.includes(format)) throw configError(`--format has value "${values.format}"; expected lines or inline`);
    const settings = settingsFrom(values);
    // $(…) splits the output on whitespace, and -v splits its value on colons.
    if (/[\s:]/.test(settings.lxcfsRoot)) {
      throw configError(`--lxcfs-root has value "${settings.lxcfsRoot}"; docker -v flags cannot carry a path with spaces or colons`);
    }
    return { format, settings };
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
