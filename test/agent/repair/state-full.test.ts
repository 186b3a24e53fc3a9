// The state save on a full filesystem: a real tmpfs of 64 KiB, mounted by the native helper (root).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { StateFile } from '../../../src/agent/repair/state.js';
import { helperPath } from '../../helpers/node.js';

const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-state-full-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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
