// The lxcfs version decides its flags: parsed from `lxcfs --version` (the host's real lxcfs here), and
// the flags each release accepts, as lxcfs' source declares them at each tag (src/lxcfs.c's options).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  defaultLxcfsArgs,
  parseLxcfsVersion,
  readLxcfsVersion,
  rejectedLxcfsArgs,
  resetsCgroupOptions,
  supportsCgroupV1,
  type LxcfsVersion,
} from '../../../src/agent/lxcfs/version.js';

const v = (text: string) => parseLxcfsVersion(text) as LxcfsVersion;

describe('lxcfs versions', () => {
  it("reads what `lxcfs --version` prints (on stderr, in quotes), and the host's real lxcfs", () => {
    assert.deepEqual(parseLxcfsVersion('"7.0.0"\n'), {
      major: 7,
      minor: 0,
      patch: 0,
      text: '7.0.0',
    });
    assert.equal(parseLxcfsVersion('lxcfs: unknown option'), undefined);
    const dpkg = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'lxcfs'], {
      encoding: 'utf8',
    });
    assert.equal(
      readLxcfsVersion('lxcfs', 5000)?.text,
      /^[\d.]+/.exec(dpkg)?.[0],
      'the version dpkg has installed',
    );
    assert.equal(readLxcfsVersion('/nonexistent/lxcfs', 5000), undefined);
  });

  it("knows which releases clear the node's cgroup2 options: up to 6.0.5 (lxc/lxcfs#681)", () => {
    for (const text of ['4.0.12', '5.0.3', '6.0.4', '6.0.5'])
      assert.equal(resetsCgroupOptions(v(text)), true, text);
    for (const text of ['6.0.6', '6.1.0', '7.0.0'])
      assert.equal(resetsCgroupOptions(v(text)), false, text);
  });

  it('knows 7.0 dropped cgroup v1 and hybrid nodes', () => {
    assert.equal(supportsCgroupV1(v('6.0.6')), true);
    assert.equal(supportsCgroupV1(v('7.0.0')), false);
  });

  it('chooses --enable-pidfd where the release has it and needs it, -l unless loadavg is off', () => {
    assert.deepEqual(defaultLxcfsArgs(v('5.0.3'), { loadavg: true }), [
      '--enable-cfs',
      '--enable-pidfd',
      '-l',
    ]);
    assert.deepEqual(defaultLxcfsArgs(v('6.0.4'), { loadavg: true }), [
      '--enable-cfs',
      '--enable-pidfd',
      '-l',
    ]);
    // 7.0 tracks by pidfd by default and only logs that the flag is deprecated
    assert.deepEqual(defaultLxcfsArgs(v('7.0.0'), { loadavg: true }), ['--enable-cfs', '-l']);
    assert.deepEqual(defaultLxcfsArgs(v('7.0.0'), { loadavg: false }), ['--enable-cfs']);
    // 3.x has no --enable-pidfd; an unknown version gets only what every release accepts
    assert.deepEqual(defaultLxcfsArgs(v('3.1.2'), { loadavg: true }), ['--enable-cfs', '-l']);
    assert.deepEqual(defaultLxcfsArgs(undefined, { loadavg: false }), ['--enable-cfs']);
  });

  it('names flags a release rejects (it would print its usage and exit), never the ones it takes', () => {
    assert.deepEqual(rejectedLxcfsArgs(v('7.0.0'), ['--enable-cfs', '--enable-cgroup', '-l']), [
      'lxcfs 7.0.0 rejects --enable-cgroup (the cgroupfs view of 6.0.x; 7.0 supports cgroup v2 only and dropped it) and would exit at once: remove it',
    ]);
    assert.deepEqual(
      rejectedLxcfsArgs(v('7.0.0'), [
        '--enable-pidfd',
        '--enable-psi-poll',
        '--runtime-dir=/run/x',
        '-u',
      ]),
      [],
    );
    assert.deepEqual(
      rejectedLxcfsArgs(v('6.0.4'), ['--enable-cgroup', '--runtime-dir=/run/x']),
      [],
    );
    assert.match(
      rejectedLxcfsArgs(v('6.0.4'), ['--enable-psi-poll'])[0] ?? '',
      /^lxcfs 6\.0\.4 rejects --enable-psi-poll \(new in 7\.0\.0\)/,
    );
    assert.equal(
      rejectedLxcfsArgs(v('5.0.3'), ['--enable-cgroup', '--runtime-dir', '/x', '--disable-zswap'])
        .length,
      3,
    );
  });
});
