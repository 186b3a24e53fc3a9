import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { runCli } from '../helpers/run-cli.js';

const agentCli = (...args: string[]) => runCli(['agent', ...args]);

test('--help lists every flag with its default', async () => {
  const { code, stdout } = await agentCli('--help');
  assert.equal(code, 0);
  for (const flag of [
    '--lxcfs-root',
    '--fuse-mount',
    '--lxcfs-bin',
    '--lxcfs-args',
    '--lxcfs-loadavg',
    '--proc',
    '--health-port',
    '--sweep-interval',
    '--mount-notifications',
    '--remount-helper',
    '--probe-interval',
    '--probe-timeout',
    '--hang-grace',
  ]) {
    assert.match(stdout, new RegExp(`^  ${flag} `, 'm'), flag);
  }
  assert.match(stdout, /default \/var\/lib\/lxcfs/);
  assert.match(
    stdout,
    /--lxcfs-args WORDS\s.*instead of the agent's choice for the\s+lxcfs version it finds/s,
  );
  assert.match(stdout, /--lxcfs-loadavg true\|false\s.*\(default true\)/s);
  assert.match(stdout, /--mount-notifications true\|false\s.*\(default true\)/s);
});

test('unknown flags and bad values fail before anything is touched, exit 2', async () => {
  const unknown = await agentCli('--no-such-flag');
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /unknown flag --no-such-flag; see 'lxcfs-webhook agent --help' \[E_CONFIG\]/,
  );
  const badPort = await agentCli(
    '--health-port',
    '70000',
    '--lxcfs-root',
    '/nonexistent/never-created',
  );
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /flag --health-port has value "70000"; expected a port number/);
  assert.ok(!existsSync('/nonexistent/never-created'));
  const notBoolean = await agentCli('--mount-notifications=off');
  assert.equal(notBoolean.code, 2);
  assert.match(
    notBoolean.stderr,
    /flag --mount-notifications has value "off"; expected true or false/,
  );
});
