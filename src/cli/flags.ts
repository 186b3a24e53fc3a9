// Flag parsing for the subcommands: `util.parseArgs`, with its errors turned into E_CONFIG errors
// that point at the command's --help, and the two injection settings of every command that mounts
// lxcfs files.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ALLOWED_FILES, DEFAULT_FILES, DEFAULT_LXCFS_ROOT } from '../config/defaults.js';
import { configError } from '../errors.js';
import { describeAllowed, parseSettings, type InjectionSettings } from '../inject/settings.js';

/** `util.parseArgs(config)`, with its errors as E_CONFIG errors that name the flag and the help. */
export function parseFlags<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw flagError(command, err as NodeJS.ErrnoException);
  }
}

/** parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes, quoting the flag or argument at fault. */
function flagError(command: string, err: NodeJS.ErrnoException): Error {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  const help = `see 'lxcfs-webhook ${command} --help'`;
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return configError(`unknown flag ${quoted}; ${help}`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return configError(`flag ${/--[\w-]+/.exec(quoted)?.[0] ?? quoted} needs a value; ${help}`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return configError(`unexpected argument "${quoted}"; ${help}`);
    default:
      return err;
  }
}

export const settingsOptions = {
  'lxcfs-root': { type: 'string' },
  'files': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const optionalFiles = ALLOWED_FILES.filter((file) => !DEFAULT_FILES.includes(file));

export const settingsUsage = [
  `  --lxcfs-root DIR      host directory lxcfs serves its files under (default ${DEFAULT_LXCFS_ROOT})`,
  '  --files LIST          comma-separated files to mount, by name (meminfo) or path (/proc/meminfo);',
  `                        default ${describeAllowed(DEFAULT_FILES)};`,
  `                        also allowed: ${describeAllowed(optionalFiles)}`,
].join('\n');

export function settingsFrom(values: { 'lxcfs-root'?: string; 'files'?: string }): InjectionSettings {
  return parseSettings({ lxcfsRoot: values['lxcfs-root'], files: values.files });
}
