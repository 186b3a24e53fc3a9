// The one CLI vocabulary: value kinds, the flag parser's errors, and --help, across every subcommand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_AGENT_HEALTH_PORT,
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_FUSE_MOUNT,
  DEFAULT_HANG_GRACE_MS,
  DEFAULT_LXCFS_LOADAVG,
  DEFAULT_LXCFS_ROOT,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
  DEFAULT_TLS_SERVER_NAME,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_SERVING_CERT_VALID_DAYS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_SWEEP_INTERVAL_MS,
  DEFAULT_WEBHOOK_HEALTH_PORT,
  DEFAULT_WEBHOOK_PORT,
  HELP_WIDTH,
  INSTALL,
} from '../../src/config/defaults.js';
import { InvalidValue, LxcfsWebhookError } from '../../src/errors.js';
import type { Command } from '../../src/cli/command.js';
import { command as agent } from '../../src/cli/agent.js';
import { command as certs } from '../../src/cli/certs.js';
import { command as check } from '../../src/cli/check.js';
import { command as dockerArgs } from '../../src/cli/docker-args.js';
import { command as inject } from '../../src/cli/inject.js';
import { command as serve } from '../../src/cli/serve.js';
import {
  byteSize,
  choice,
  duration,
  formatDuration,
  integer,
  lxcfsFiles,
  lxcfsRoot,
  path,
  port,
  words,
} from '../../src/cli/values.js';
import { runCli } from '../helpers/run-cli.js';

/** Each command with the arguments it needs besides flags with defaults. */
const commands: Array<[Command<any>, string[]]> = [
  [serve, []],
  [agent, []],
  [check, ['node']],
  [inject, ['-f', '-']],
  [dockerArgs, []],
  [certs, ['--out', '/tmp/never-written']],
];

function invalid(parse: () => unknown): InvalidValue {
  try {
    parse();
  } catch (err) {
    assert.ok(err instanceof InvalidValue, String(err));
    return err;
  }
  assert.fail('expected an InvalidValue');
}

function parseError(command: Command<any>, args: string[]): string {
  try {
    command.parse(args);
  } catch (err) {
    assert.ok(err instanceof LxcfsWebhookError, String(err));
    assert.equal(err.code, 'E_CONFIG');
    return err.message;
  }
  assert.fail(`${command.name} ${args.join(' ')} should not parse`);
}

describe('value kinds', () => {
  it('ports: 0-65535 in decimal, nothing else', () => {
    for (const [text, value] of [
      ['0', 0],
      ['8081', 8081],
      ['65535', 65535],
    ] as const)
      assert.equal(port.parse(text), value);
    for (const text of [
      '0x1f91',
      '',
      '1e3',
      '8081.0',
      '65536',
      '-1',
      ' 80',
      '80 ',
      '+80',
      'https',
    ]) {
      assert.match(
        invalid(() => port.parse(text)).expected,
        /^a port number from 0 to 65535, in decimal/,
        JSON.stringify(text),
      );
    }
  });

  it('durations: ms, s, m, decimals, and a bare number as seconds, in milliseconds', () => {
    const any = duration(0);
    const cases = [
      ['500ms', 500],
      ['10s', 10_000],
      ['1.5s', 1500],
      ['2m', 120_000],
      ['30', 30_000],
      ['0', 0],
      ['0.5', 500],
      ['60m', 3_600_000],
    ] as const;
    for (const [text, ms] of cases) assert.equal(any.parse(text), ms, text);
    for (const text of [
      'soon',
      '',
      '10h',
      '1e3',
      '-1s',
      '10 s',
      ' 10s',
      's',
      '.5s',
      '61m',
      '3601',
    ]) {
      assert.match(
        invalid(() => any.parse(text)).expected,
        /^a duration from 0 to 60m such as 500ms, 10s or 2m \(a bare number is seconds\)$/,
        text,
      );
    }
    assert.match(invalid(() => duration(1).parse('0s')).expected, /^a duration from 1ms to 60m/);
    assert.equal(duration(1).parse('1ms'), 1);
  });

  it('durations are written back in the largest exact unit, which parses to the same value', () => {
    for (const [ms, text] of [
      [500, '500ms'],
      [10_000, '10s'],
      [1500, '1500ms'],
      [120_000, '2m'],
      [0, '0'],
    ] as const) {
      assert.equal(formatDuration(ms), text);
      assert.equal(duration(0).parse(text), ms);
    }
  });

  it('sizes: bytes, Ki or Mi, within bounds', () => {
    const size = byteSize(64 * 1024, 1024 * 1024 * 1024);
    assert.equal(size.parse('8Mi'), 8 * 1024 * 1024);
    assert.equal(size.parse('64Ki'), 64 * 1024);
    assert.equal(size.parse('65536'), 65536);
    assert.equal(size.format(8 * 1024 * 1024), '8Mi');
    for (const text of ['100', '8MB', '2048Mi', '8 Mi', '', '1e6']) {
      assert.match(invalid(() => size.parse(text)).expected, /^a size from 64Ki to 1024Mi/, text);
    }
  });

  it('whole numbers: decimal digits within bounds', () => {
    const days = integer(1, 36500, 'days');
    assert.equal(days.parse('365'), 365);
    for (const text of ['0', '36501', '1e3', '0x10', '3.5', '', '-5']) {
      assert.equal(
        invalid(() => days.parse(text)).expected,
        'a whole number of days from 1 to 36500',
        text,
      );
    }
  });

  it('lists: comma-separated lxcfs files, in a stable order; space-separated words', () => {
    assert.deepEqual(lxcfsFiles.parse('online, meminfo,/proc/cpuinfo'), [
      '/proc/cpuinfo',
      '/proc/meminfo',
      '/sys/devices/system/cpu/online',
    ]);
    assert.match(
      invalid(() => lxcfsFiles.parse('meminfo,pressure')).expected,
      /^a comma-separated list of cpuinfo, diskstats/,
    );
    assert.match(invalid(() => lxcfsFiles.parse('')).expected, /comma-separated/);
    assert.deepEqual(words.parse('--enable-cfs  -l'), ['--enable-cfs', '-l']);
    assert.deepEqual(words.parse(''), []);
    assert.equal(words.format(['--enable-cfs', '-l']), '"--enable-cfs -l"');
  });

  it('paths: any non-empty path; the lxcfs root absolute, normalised, not /', () => {
    assert.equal(path('FILE').parse('tls.crt'), 'tls.crt');
    assert.equal(invalid(() => path('FILE').parse('')).expected, 'a file');
    assert.equal(lxcfsRoot.parse('/run/lxcfs/'), '/run/lxcfs');
    for (const text of ['var/lib/lxcfs', '/', '/var/../etc', ''])
      assert.match(invalid(() => lxcfsRoot.parse(text)).expected, /^an absolute directory/);
  });

  it('choices: exactly one of the values', () => {
    const format = choice(['yaml', 'json']);
    assert.equal(format.parse('json'), 'json');
    assert.equal(invalid(() => format.parse('JSON')).expected, 'yaml or json');
  });
});

describe('flags of every command', () => {
  it('refuse an unknown flag in the same words', () => {
    for (const [command, args] of commands) {
      assert.equal(
        parseError(command, [...args, '--bogus']),
        `unknown flag --bogus; see 'lxcfs-webhook ${command.name} --help'`,
      );
    }
  });

  it('refuse a bad value naming the flag, the value, what is expected and the help, in the same words', () => {
    assert.equal(
      parseError(agent, ['--health-port', '1e3']),
      'flag --health-port has value "1e3"; expected a port number from 0 to 65535, in decimal (0 picks a free one); ' +
        "see 'lxcfs-webhook agent --help'",
    );
    for (const [command, flag] of [
      [serve, '--port'],
      [serve, '--health-port'],
      [agent, '--health-port'],
    ] as const) {
      for (const text of ['0x1f91', '', '1e3', '8081.0']) {
        assert.match(
          parseError(command, [`${flag}=${text}`]),
          new RegExp(
            `^flag ${flag} has value "${text.replace('.', '\\.')}"; expected a port number from 0 to 65535`,
          ),
          `${command.name} ${flag}=${text}`,
        );
      }
    }
    for (const [command, flag] of [
      [serve, '--shutdown-grace'],
      [agent, '--sweep-interval'],
      [agent, '--hang-grace'],
    ] as const) {
      assert.match(
        parseError(command, [flag, '10h']),
        new RegExp(`^flag ${flag} has value "10h"; expected a duration from`),
      );
    }
  });

  it('take the same duration syntax in serve and agent', () => {
    for (const [text, ms] of [
      ['500ms', 500],
      ['10s', 10_000],
      ['2m', 120_000],
      ['15', 15_000],
    ] as const) {
      assert.equal(serve.parse(['--shutdown-grace', text]).shutdownGraceMs, ms);
      assert.equal(agent.parse(['--probe-timeout', text]).probeTimeoutMs, ms);
    }
  });

  it('say when a flag lacks its value or a switch gets one', () => {
    assert.equal(
      parseError(serve, ['--port']),
      "flag --port needs a value; see 'lxcfs-webhook serve --help'",
    );
    assert.equal(
      parseError(agent, ['--uninstall=yes']),
      "flag --uninstall takes no value; see 'lxcfs-webhook agent --help'",
    );
    assert.match(
      parseError(agent, ['--lxcfs-args', '-l']),
      /^flag --lxcfs-args has a value starting with "-"; write it as --lxcfs-args=VALUE/,
    );
    assert.deepEqual(agent.parse(['--lxcfs-args=-l']).lxcfsArgs, ['-l']);
  });

  it("leave lxcfs' flags to the agent unless given, and refuse --lxcfs-loadavg beside --lxcfs-args", () => {
    assert.equal(agent.parse([]).lxcfsArgs, undefined);
    assert.equal(agent.parse([]).lxcfsLoadavg, true);
    assert.equal(agent.parse(['--lxcfs-loadavg=false']).lxcfsLoadavg, false);
    assert.equal(
      parseError(agent, ['--lxcfs-args=--enable-cfs', '--lxcfs-loadavg=false']),
      "--lxcfs-loadavg chooses -l among the agent's own lxcfs flags; with --lxcfs-args, put -l in them or leave it out; see 'lxcfs-webhook agent --help'",
    );
    assert.match(
      parseError(agent, ['--lxcfs-loadavg=no']),
      /^flag --lxcfs-loadavg has value "no"; expected true or false/,
    );
  });
});

/** `--help` entries: flag name and the default shown, the entry's wrapped lines joined again. */
function shownDefaults(usage: string): Map<string, string> {
  const entries: string[] = [];
  for (const line of usage.slice(usage.indexOf('\nflags:\n')).split('\n').slice(2)) {
    if (line === '') break;
    if (/^ {2}-/.test(line)) entries.push(line.trim());
    else entries[entries.length - 1] += ` ${line.trim()}`;
  }
  return new Map(
    entries.flatMap((entry) => {
      const shown = /\(default (.+)\)$/.exec(entry)?.[1];
      return shown === undefined
        ? []
        : [[/--[\w-]+/.exec(entry)![0], shown.replace(/^"(.*)"$/, '$1')]];
    }),
  );
}

describe('--help', () => {
  it(`fits in ${HELP_WIDTH} columns, for every command and the command list`, async () => {
    const helps = [
      ['lxcfs-webhook', (await runCli(['--help'])).stdout],
      ...(await Promise.all(
        commands.map(async ([c]) => [c.name, (await runCli([c.name, '--help'])).stdout]),
      )),
    ];
    for (const [name, help] of helps) {
      assert.ok(help!.includes('usage: lxcfs-webhook'), name);
      for (const line of help!.split('\n'))
        assert.ok(line.length <= HELP_WIDTH, `${name}: ${line.length} columns: ${line}`);
    }
  });

  it('shows the defaults of config/defaults.ts', () => {
    const expected: Array<[Command<any>, Record<string, string>]> = [
      [
        serve,
        {
          '--port': String(DEFAULT_WEBHOOK_PORT),
          '--health-port': String(DEFAULT_WEBHOOK_HEALTH_PORT),
          '--max-request-bytes': `${DEFAULT_MAX_REQUEST_BYTES / 1024 / 1024}Mi`,
          '--max-request-bytes-in-flight': `${DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT / 1024 / 1024}Mi`,
          '--tls-server-name': DEFAULT_TLS_SERVER_NAME,
          '--shutdown-grace': `${DEFAULT_SHUTDOWN_GRACE_MS / 1000}s`,
          '--lxcfs-root': DEFAULT_LXCFS_ROOT,
        },
      ],
      [
        agent,
        {
          '--lxcfs-root': DEFAULT_LXCFS_ROOT,
          '--fuse-mount': DEFAULT_FUSE_MOUNT,
          '--health-port': String(DEFAULT_AGENT_HEALTH_PORT),
          '--sweep-interval': `${DEFAULT_SWEEP_INTERVAL_MS / 1000}s`,
          '--probe-interval': `${DEFAULT_PROBE_INTERVAL_MS / 1000}s`,
          '--probe-timeout': `${DEFAULT_PROBE_TIMEOUT_MS / 1000}s`,
          '--hang-grace': `${DEFAULT_HANG_GRACE_MS / 1000}s`,
          '--lxcfs-loadavg': String(DEFAULT_LXCFS_LOADAVG),
        },
      ],
      [
        certs,
        {
          '--namespace': INSTALL.namespace,
          '--service': INSTALL.service,
          '--valid-days': String(DEFAULT_SERVING_CERT_VALID_DAYS),
          '--ca-valid-days': String(DEFAULT_CA_VALID_DAYS),
        },
      ],
    ];
    for (const [command, defaults] of expected) {
      const shown = shownDefaults(command.usage);
      for (const [flag, value] of Object.entries(defaults))
        assert.equal(shown.get(flag), value, `${command.name} ${flag}`);
    }
  });

  it('shows each default as a value that parses to what the command uses without the flag', () => {
    for (const [command, args] of commands) {
      const shown = shownDefaults(command.usage);
      assert.ok(shown.size >= 1, command.name);
      const without = command.parse(args);
      for (const [flag, text] of shown) {
        assert.deepEqual(
          command.parse([...args, `${flag}=${text}`]),
          without,
          `${command.name} ${flag}=${text}`,
        );
      }
    }
  });
});
