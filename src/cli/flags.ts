// The one flag parser of the subcommands. Each command declares its flags once (name, kind of value,
// default from config/defaults.ts, one line of help); `FlagSet` parses them with util.parseArgs and
// writes the flag part of --help from the same declarations, so help, defaults and parsing agree.
// Every error names the flag and the command's --help in the same words, whichever command it is.
import { parseArgs } from 'node:util';
import { HELP_WIDTH } from '../config/defaults.js';
import { configError, InvalidValue, LxcfsWebhookError } from '../errors.js';
import type { ValueKind } from './values.js';

export interface ValueFlag<T> {
  kind: ValueKind<T>;
  /** One line; wrapped to the help width. */
  help: string;
  /** Used when the flag is not given, and shown in --help. None: the option stays undefined. */
  default?: T;
  /** One letter: `-f` for `--filename`. */
  short?: string;
  /** May be given more than once; the values come as a list. */
  repeatable?: true;
}

/** A flag without a value: true when given. */
export interface SwitchFlag {
  kind: 'switch';
  help: string;
}

// `any`: a set mixes flags of different value types; FlagValues recovers each one's type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FlagDeclarations = Record<string, ValueFlag<any> | SwitchFlag>;

export type FlagValues<F extends FlagDeclarations> = {
  -readonly [K in keyof F]: F[K] extends SwitchFlag
    ? boolean
    : F[K] extends { kind: ValueKind<infer T> }
      ? F[K] extends { repeatable: true }
        ? T[]
        : F[K] extends { default: NonNullable<unknown> }
          ? T
          : T | undefined
      : never;
};

/** Left column of the flag list: longer flag names put their help on the next line. */
const MAX_NAME_COLUMN = 30;

/** Joins two words so that wrap() keeps them on one line. */
const NO_BREAK = '\u00a0';

/** `text` in lines that fit in HELP_WIDTH columns after `indent` spaces (which the caller adds). */
export function wrap(text: string, indent: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/[ \n]+/).filter((w) => w !== '')) {
    if (line !== '' && indent + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.map((l) => l.replaceAll(NO_BREAK, ' '));
}

export class FlagSet<F extends FlagDeclarations> {
  constructor(
    /** The subcommand, as typed after `lxcfs-webhook`. */
    readonly command: string,
    readonly flags: F,
  ) {}

  private get seeHelp(): string {
    return `see 'lxcfs-webhook ${this.command} --help'`;
  }

  /** `flag --port has value "x"; expected ...; see 'lxcfs-webhook serve --help'`. */
  private valueError(flag: keyof F & string, value: string, expected: string): LxcfsWebhookError {
    return configError(
      `flag --${flag} has value "${value}"; expected ${expected}; ${this.seeHelp}`,
      flag,
    );
  }

  /** Any other problem with the flags given, e.g. two that do not go together. */
  usageError(problem: string): LxcfsWebhookError {
    return configError(`${problem}; ${this.seeHelp}`);
  }

  /** Parses `args`; positionals are refused unless `allowPositionals`, and left to the command otherwise. */
  parse(
    args: string[],
    { allowPositionals = false } = {},
  ): { values: FlagValues<F>; positionals: string[] } {
    const options = Object.fromEntries(
      Object.entries(this.flags).map(([name, flag]) => [
        name,
        {
          type: flag.kind === 'switch' ? ('boolean' as const) : ('string' as const),
          ...(flag.kind !== 'switch' && flag.short ? { short: flag.short } : {}),
          ...(flag.kind !== 'switch' && flag.repeatable ? { multiple: true } : {}),
        },
      ]),
    );
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({ args, options, strict: true, allowPositionals });
    } catch (err) {
      throw this.parseArgsError(err as NodeJS.ErrnoException);
    }
    const values: Record<string, unknown> = {};
    for (const [name, flag] of Object.entries(this.flags)) {
      const given = parsed.values[name];
      if (flag.kind === 'switch') values[name] = given === true;
      else if (given === undefined) values[name] = flag.repeatable ? [] : flag.default;
      else if (Array.isArray(given))
        values[name] = given.map((text) => this.parseValue(name, flag.kind, String(text)));
      else values[name] = this.parseValue(name, flag.kind, String(given));
    }
    return { values: values as FlagValues<F>, positionals: parsed.positionals };
  }

  private parseValue<T>(name: string, kind: ValueKind<T>, text: string): T {
    try {
      return kind.parse(text);
    } catch (err) {
      if (err instanceof InvalidValue) throw this.valueError(name, text, err.expected);
      throw err;
    }
  }

  /** parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes, quoting the flag or argument at fault. */
  private parseArgsError(err: NodeJS.ErrnoException): LxcfsWebhookError {
    const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
    const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        return this.usageError(`unknown flag ${quoted}`);
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        return this.usageError(`unexpected argument "${quoted}"`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        if (err.message.includes('ambiguous')) {
          return this.usageError(
            `flag ${flag} has a value starting with "-"; write it as ${flag}=VALUE`,
          );
        }
        if (err.message.includes('does not take'))
          return this.usageError(`flag ${flag} takes no value`);
        return this.usageError(`flag ${flag} needs a value`);
      default:
        return this.usageError(`cannot read the flags (${err.message})`);
    }
  }

  /** The flag list of --help: name, placeholder, help and default, wrapped to HELP_WIDTH. */
  help(): string {
    const entries = Object.entries(this.flags).map(([name, flag]) => {
      if (flag.kind === 'switch') return { left: `  --${name}`, text: flag.help };
      const short = flag.short ? `-${flag.short}, ` : '';
      // "(default" stays on the line of the value's first word.
      const shown =
        flag.default === undefined ? '' : ` (default${NO_BREAK}${flag.kind.format(flag.default)})`;
      return { left: `  ${short}--${name} ${flag.kind.placeholder}`, text: `${flag.help}${shown}` };
    });
    const column = Math.min(MAX_NAME_COLUMN, Math.max(...entries.map((e) => e.left.length)) + 2);
    return entries
      .flatMap(({ left, text }) => {
        const fits = left.length + 2 <= column;
        const lines = wrap(text, column);
        const body = lines.map((line) => `${' '.repeat(column)}${line}`);
        if (fits) body[0] = `${left.padEnd(column)}${lines[0]}`;
        else body.unshift(left);
        return body;
      })
      .join('\n');
  }
}

export interface HelpText {
  /** After `usage: lxcfs-webhook `, e.g. `serve [flags]`. */
  synopsis: string;
  /** Paragraphs before the flags, lines as written (at most HELP_WIDTH columns; a test checks). */
  about: string;
  /** Paragraphs after the flags. */
  footer?: string;
}

export function helpText(
  flags: FlagSet<FlagDeclarations>,
  { synopsis, about, footer }: HelpText,
): string {
  return [
    `usage: lxcfs-webhook ${synopsis}`,
    '',
    about,
    '',
    'flags:',
    flags.help(),
    ...(footer ? ['', footer] : []),
  ].join('\n');
}

/**
 * A lower layer's error, with the flag it is about in front (`--tls-cert: the certificate file ...`):
 * lower layers name their own settings (`certFile`), and each command knows which flag sets which.
 */
export function withFlagName(
  err: unknown,
  flagOfSetting: Readonly<Record<string, string>>,
): unknown {
  const flag =
    err instanceof LxcfsWebhookError && err.setting !== undefined
      ? flagOfSetting[err.setting]
      : undefined;
  return flag ? (err as LxcfsWebhookError).within(flag) : err;
}
