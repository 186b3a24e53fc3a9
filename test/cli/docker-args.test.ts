// `lxcfs-webhook docker-args` run as users run it, inside `docker run $(…)`.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_FILES } from '../../src/config/defaults.js';
import { runCli } from '../helpers/run-cli.js';

describe('lxcfs-webhook docker-args', () => {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-root-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('prints one read-only --mount type=bind flag per default file, one per line', async () => {
    const result = await runCli(['docker-args']);
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      DEFAULT_FILES.map(
        (file) => `--mount type=bind,source=/var/lib/lxcfs${file},target=${file},readonly\n`,
      ).join(''),
    );
  });

  it('prints -v flags with --style v', async () => {
    const result = await runCli(['docker-args', '--style', 'v']);
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      DEFAULT_FILES.map((file) => `-v /var/lib/lxcfs${file}:${file}:ro\n`).join(''),
    );
  });

  it('honours --lxcfs-root and --files, and prints them on one line with --format inline', async () => {
    const mount = await runCli([
      'docker-args',
      '--lxcfs-root',
      '/run/lxcfs/',
      '--files',
      'meminfo',
      '--format',
      'inline',
    ]);
    assert.equal(
      mount.stdout,
      '--mount type=bind,source=/run/lxcfs/proc/meminfo,target=/proc/meminfo,readonly\n',
    );
    const result = await runCli([
      'docker-args',
      '--lxcfs-root',
      '/run/lxcfs/',
      '--files',
      'online,meminfo',
      '--format',
      'inline',
      '--style',
      'v',
    ]);
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      '-v /run/lxcfs/proc/meminfo:/proc/meminfo:ro -v /run/lxcfs/sys/devices/system/cpu/online:/sys/devices/system/cpu/online:ro\n',
    );
  });

  it('splits into docker run arguments the way $(…) does, in either format', async () => {
    for (const format of ['lines', 'inline']) {
      const words = (
        await runCli(['docker-args', '--files', 'meminfo,stat', '--format', format, '--style', 'v'])
      ).stdout
        .trim()
        .split(/\s+/);
      assert.deepEqual(words, [
        '-v',
        '/var/lib/lxcfs/proc/meminfo:/proc/meminfo:ro',
        '-v',
        '/var/lib/lxcfs/proc/stat:/proc/stat:ro',
      ]);
      const mounts = (
        await runCli(['docker-args', '--files', 'meminfo', '--format', format])
      ).stdout
        .trim()
        .split(/\s+/);
      assert.deepEqual(mounts, [
        '--mount',
        'type=bind,source=/var/lib/lxcfs/proc/meminfo,target=/proc/meminfo,readonly',
      ]);
    }
  });

  it('warns on stderr when the files are missing on this machine, and not when they are there', async () => {
    const missing = await runCli(['docker-args', '--lxcfs-root', root, '--files', 'meminfo']);
    assert.equal(missing.code, 0);
    assert.match(
      missing.stderr,
      /warning: 1 of 1 files are missing on this machine \(.*\/proc\/meminfo\); start lxcfs first: the container will not start until then/,
    );
    assert.match(
      (await runCli(['docker-args', '--lxcfs-root', root, '--files', 'meminfo', '--style', 'v']))
        .stderr,
      /docker would create empty directories/,
    );
    mkdirSync(dirname(join(root, 'proc/meminfo')), { recursive: true });
    writeFileSync(join(root, 'proc/meminfo'), 'MemTotal: 262144 kB\n');
    const present = await runCli(['docker-args', '--lxcfs-root', root, '--files', 'meminfo']);
    assert.equal(present.stderr, '');
    assert.equal(
      present.stdout,
      `--mount type=bind,source=${root}/proc/meminfo,target=/proc/meminfo,readonly\n`,
    );
  });

  it('refuses a file lxcfs does not serve, listing the allowed ones', async () => {
    const result = await runCli(['docker-args', '--files', 'meminfo,pressure']);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /--files has value "meminfo,pressure"; expected a comma-separated list of cpuinfo, diskstats, loadavg, meminfo, slabinfo, stat, swaps, uptime, online/,
    );
  });

  it('refuses a root that -v cannot carry and an unknown format', async () => {
    assert.match(
      (await runCli(['docker-args', '--lxcfs-root', '/var/lib/my lxcfs'])).stderr,
      /flag --lxcfs-root has value "\/var\/lib\/my lxcfs"; expected an absolute directory without spaces, colons or commas \(docker -v and --mount flags cannot carry them\)/,
    );
    assert.equal((await runCli(['docker-args', '--lxcfs-root', '/var/lib/a,b'])).code, 2);
    const format = await runCli(['docker-args', '--format', 'json']);
    assert.equal(format.code, 2);
    assert.match(
      format.stderr,
      /flag --format has value "json"; expected lines or inline; see 'lxcfs-webhook docker-args --help'/,
    );
  });
});
