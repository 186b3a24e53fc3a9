import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FILES, DEFAULT_SANDBOX_RUNTIME_CLASSES } from '../../src/config/defaults.js';
import { LxcfsWebhookError } from '../../src/errors.js';
import { parseSettings, resolveFile } from '../../src/inject/settings.js';

function configError(fn: () => unknown): LxcfsWebhookError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LxcfsWebhookError);
    assert.equal(err.code, 'E_CONFIG');
    return err;
  }
  assert.fail('expected a configuration error');
}

describe('parseSettings', () => {
  it('reads sandbox RuntimeClasses: names, prefixes with *, "" for none; refuses anything else, naming what it takes', () => {
    assert.deepEqual(
      parseSettings({ sandboxRuntimeClasses: 'gvisor, kata-* ,my.class' }).sandboxRuntimeClasses,
      ['gvisor', 'kata-*', 'my.class'],
    );
    assert.deepEqual(parseSettings({ sandboxRuntimeClasses: '' }).sandboxRuntimeClasses, []);
    for (const bad of ['Gvisor', '*', 'ka*ta', 'gvisor,-x']) {
      assert.throws(
        () => parseSettings({ sandboxRuntimeClasses: bad }),
        /RuntimeClass names .* may end in \*/,
        bad,
      );
    }
  });

  it('defaults to /var/lib/lxcfs and the eight default files', () => {
    assert.deepEqual(parseSettings({}), {
      lxcfsRoot: '/var/lib/lxcfs',
      files: DEFAULT_FILES,
      sandboxRuntimeClasses: DEFAULT_SANDBOX_RUNTIME_CLASSES,
    });
    assert.equal(DEFAULT_FILES.length, 8);
    assert.ok(!DEFAULT_FILES.includes('/proc/slabinfo'));
  });

  it('accepts short names and paths, in any order, and returns a stable order', () => {
    const a = parseSettings({ files: 'online,meminfo,/proc/cpuinfo,proc/slabinfo' }).files;
    const b = parseSettings({
      files: 'slabinfo,cpuinfo, meminfo ,/sys/devices/system/cpu/online',
    }).files;
    assert.deepEqual(a, [
      '/proc/cpuinfo',
      '/proc/meminfo',
      '/proc/slabinfo',
      '/sys/devices/system/cpu/online',
    ]);
    assert.deepEqual(a, b);
  });

  it('refuses files lxcfs does not serve or runc refuses, naming the allowed values', () => {
    const err = configError(() => parseSettings({ files: 'meminfo,pressure' }));
    assert.equal(
      err.message,
      'the list of lxcfs files has value "meminfo,pressure"; expected a comma-separated list of cpuinfo, diskstats, ' +
        'loadavg, meminfo, slabinfo, stat, swaps, uptime, online (lxcfs serves only these, and runc refuses other /proc files)',
    );
    configError(() => parseSettings({ files: '/proc/pressure/cpu' }));
    configError(() => parseSettings({ files: '' }));
    configError(() => parseSettings({ files: '/proc/../etc/passwd' }));
  });

  it('normalises the root and refuses relative, "..", and "/"', () => {
    assert.equal(parseSettings({ lxcfsRoot: '/run/lxcfs//' }).lxcfsRoot, '/run/lxcfs');
    for (const bad of ['var/lib/lxcfs', '/var/lib/../../etc', '/', '//']) {
      assert.match(
        configError(() => parseSettings({ lxcfsRoot: bad })).message,
        /^the lxcfs root has value .*; expected an absolute directory/,
      );
    }
  });
});

describe('resolveFile', () => {
  it('matches only among the candidates', () => {
    assert.equal(resolveFile('meminfo', DEFAULT_FILES), '/proc/meminfo');
    assert.equal(resolveFile('slabinfo', DEFAULT_FILES), undefined);
    assert.equal(resolveFile('/etc/meminfo', DEFAULT_FILES), undefined);
  });
});
