// `lxcfs-webhook docker-args`: the flags that give a plain `docker run` / `podman run` container the
// same lxcfs files the webhook mounts into pods:
//
//   docker run $(lxcfs-webhook docker-args) nginx
//
// `--mount type=bind,…` by default: unlike `-v`, it refuses to start the container when a source is
// missing, instead of creating an empty directory in its place, the classic "mountpoint is not empty"
// (lxcfs then cannot mount there) and "not a directory" (runc cannot bind that directory over a /proc
// file) failures of lxcfs on Docker. `--style v` keeps the shorter -v flags.
import { existsSync } from 'node:fs';
import { hostPathOf } from '../inject/volumes.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Command } from './command.js';
import { FlagSet, helpText } from './flags.js';
import { injectionFlags, settingsFrom } from './shared-flags.js';
import { choice, lxcfsRoot, narrowed } from './values.js';

const flags = new FlagSet('docker-args', {
  format: {
    kind: choice(['lines', 'inline']),
    default: 'lines',
    help: 'lines: one flag per line; inline: all on one line',
  },
  style: {
    kind: choice(['mount', 'v']),
    default: 'mount',
    help:
      'mount: --mount type=bind,source=…,target=…,readonly, which refuses to start the container while lxcfs ' +
      'is not serving; v: -v source:target:ro, which creates empty directories in place of missing files',
  },
  ...injectionFlags,
  'lxcfs-root': {
    ...injectionFlags['lxcfs-root'],
    // $(…) splits the output on whitespace, -v splits its value on colons and --mount on commas.
    kind: narrowed(
      lxcfsRoot,
      (root) => !/[\s:,]/.test(root),
      'an absolute directory without spaces, colons or commas (docker -v and --mount flags cannot carry them)',
    ),
  },
});

const usage = helpText(flags, {
  synopsis: 'docker-args [flags]',
  about: `Prints the docker/podman run flags that mount the lxcfs files read-only at their usual paths
(--mount by default: the container does not start while lxcfs is not serving):

  docker run $(lxcfs-webhook docker-args) nginx`,
});

interface DockerArgsOptions {
  format: 'lines' | 'inline';
  style: 'mount' | 'v';
  settings: InjectionSettings;
}

/** One flag (as the words $(…) splits it into) mounting `source` read-only at `target`. */
function mountFlag(style: 'mount' | 'v', source: string, target: string): string {
  return style === 'mount'
    ? `--mount type=bind,source=${source},target=${target},readonly`
    : `-v ${source}:${target}:ro`;
}

export const command: Command<DockerArgsOptions> = {
  name: 'docker-args',
  summary: 'print the --mount (or -v) flags for the lxcfs files in a docker/podman run container',
  usage,
  parse(args) {
    const { values } = flags.parse(args);
    return { format: values.format, style: values.style, settings: settingsFrom(values) };
  },
  async run({ format, style, settings }) {
    const flags = settings.files.map((file) =>
      mountFlag(style, hostPathOf(settings.lxcfsRoot, file), file),
    );
    process.stdout.write(`${flags.join(format === 'lines' ? '\n' : ' ')}\n`);

    const missing = settings.files
      .map((file) => hostPathOf(settings.lxcfsRoot, file))
      .filter((path) => !existsSync(path));
    if (missing.length > 0) {
      process.stderr.write(
        `lxcfs-webhook docker-args: warning: ${missing.length} of ${settings.files.length} files are missing on this machine ` +
          `(${missing[0]}${missing.length > 1 ? ', ...' : ''}); start lxcfs first: ` +
          `${style === 'mount' ? 'the container will not start until then' : 'docker would create empty directories in their place'}\n`,
      );
    }
    return 0;
  },
};
