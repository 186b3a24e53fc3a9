import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { StateFile } from '../../../src/agent/repair/state.js';
import { helperPath } from '../../helpers/node.js';

const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a missing or unreadable file is an empty state, not an error', () => {
  assert.deepEqual(new StateFile(join(dir, 'absent.json')).load(), {
    knownDevs: [],
    namespaces: {},
  });
  writeFileSync(join(dir, 'broken.json'), '{not json');
  assert.deepEqual(new StateFile(join(dir, 'broken.json')).load(), {
    knownDevs: [],
    namespaces: {},
  });
});

test('what is saved is loaded back by a new agent process', () => {
  const path = join(dir, 'state.json');
  const state = {
    knownDevs: ['0:41', '0:43'],
    namespaces: {
      'mnt:[4026532301]': {
        cgroup: '/kubepods/pod1/c1',
        targets: { '/proc/meminfo': { lxcfsPath: '/proc/meminfo', readOnly: false } },
      },
    },
  };
  new StateFile(path).save(state);
  assert.deepEqual(new StateFile(path).load(), state);
  assert.throws(() => statSync(`${path}.tmp`), /ENOENT/); // written by rename, nothing left over
});

test('an unchanged state is not written again', () => {
  const path = join(dir, 'unchanged.json');
  const file = new StateFile(path);
  file.save({ knownDevs: ['0:41'], namespaces: {} });
  writeFileSync(path, 'sentinel'); // would be overwritten by a second write
  file.save({ knownDevs: ['0:41'], namespaces: {} });
  assert.equal(readFileSync(path, 'utf8'), 'sentinel');
  file.save({ knownDevs: ['0:41', '0:42'], namespaces: {} });
  assert.match(readFileSync(path, 'utf8'), /0:42/);
});

test('a full filesystem: the save reports ENOSPC without throwing, leaves the last file and no partial copy; the next save works once there is room', async (t) => {
  const small = join(dir, 'small');
  mkdirSync(small);
  await promisify(execFile)(helperPath, ['tmpfs', small, 'size=64k']);
  t.after(() => promisify(execFile)(helperPath, ['detach', small]));
  const path = join(small, 'state.json');
  const file = new StateFile(path);
  assert.deepEqual(file.save({ knownDevs: ['0:41'], namespaces: {} }), { ok: true, bytes: 38 });
  writeFileSync(join(small, 'filler'), Buffer.alloc(60 * 1024));
  const big = {
    knownDevs: ['0:41', '0:42'],
    namespaces: { 'mnt:[1]': { cgroup: 'x'.repeat(8000), targets: {} } },
  };
  const failed = file.save(big);
  assert.equal(failed.ok, false);
  assert.equal(failed.ok === false && failed.code, 'ENOSPC');
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { knownDevs: ['0:41'], namespaces: {} });
  assert.throws(() => statSync(`${path}.tmp`), /ENOENT/);
  rmSync(join(small, 'filler'));
  assert.equal(file.save(big).ok, true, 'the same state is written at the next try');
  assert.deepEqual(new StateFile(path).load(), big);
});

test('a state an older agent left on the anchor is read, and removed there once saved in its new place', () => {
  const legacy = join(dir, 'legacy.json');
  const state = { knownDevs: ['0:41'], namespaces: {} };
  writeFileSync(legacy, JSON.stringify(state));
  const file = new StateFile(join(dir, 'new-place.json'), legacy);
  assert.deepEqual(file.load(), state);
  assert.ok(file.save(state).ok, 'saved although unchanged: it is not in its new place yet');
  assert.deepEqual(new StateFile(join(dir, 'new-place.json')).load(), state);
  assert.throws(() => statSync(legacy), /ENOENT/);
});
