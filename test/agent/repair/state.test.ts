import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { StateFile } from '../../../src/agent/repair/state.js';

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
