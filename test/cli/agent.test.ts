import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { parseDuration } from '../../src/cli/agent.js';
import { cliPath } from '../helpers/paths.js';

test('durations: ms, s, m, or plain seconds', () => {
  assert.equal(parseDuration('sweep-interval', '500ms'), 500);
  assert.equal(parseDuration('sweep-interval', '10s'), 10_000);
  assert.equal(parseDuration('sweep-interval', '1.5s'), 1500);
  assert.equal(parseDuration('sweep-interval', '2m'), 120_000);
  assert.equal(parseDuration('sweep-interval', '30'), 30_000);
  assert.throws(() => parseDuration('sweep-interval', 'soon'), /--sweep-interval "soon" is not a duration: use e.g. 500ms, 10s or 2m/);
  assert.throws(() => parseDuration('hang-grace', '0s'), /--hang-grace must be longer than 0/);
});

function agentCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, 'agent', ...args], { timeout: 10_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

test('--help lists every flag with its default', async () => {
  const { code, stdout } = await agentCli('--help');
  assert.equal(code, 0);
  for (const flag of ['--lxcfs-root', '--fuse-mount', '--lxcfs-bin', '--lxcfs-args', '--proc', '--health-port', '--sweep-interval', '--remount-helper', '--probe-interval', '--probe-timeout', '--hang-grace']) {
    assert.match(stdout, new RegExp(`^  ${flag} `, 'm'), flag);
  }
  assert.match(stdout, /default \/var\/lib\/lxcfs/);
  assert.match(stdout, /default "--enable-cfs -l"/);
});

test('unknown flags and bad values fail before anything is touched, exit 2', async () => {
  const unknown = await agentCli('--no-such-flag');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown option '--no-such-flag'.*see lxcfs-webhook agent --help \[E_CONFIG\]/);
  const badPort = await agentCli('--health-port', '70000', '--lxcfs-root', '/nonexistent/never-created');
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /--health-port "70000" is not a port/);
  assert.ok(!existsSync('/nonexistent/never-created'));
});
