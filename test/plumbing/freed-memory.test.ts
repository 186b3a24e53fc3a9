import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { MALLOC_TRIM_ADDON_CANDIDATES } from '../../src/config/defaults.js';
import { loadMallocTrim, releaseFreedMemory } from '../../src/plumbing/freed-memory.js';
import { waitUntil } from '../helpers/wait.js';

describe('the malloc-trim addon (native/malloc-trim.c)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-trim-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads into this Node.js and calls malloc_trim', () => {
    const loaded = loadMallocTrim(MALLOC_TRIM_ADDON_CANDIDATES);
    assert.ok(loaded.trim, 'problem' in loaded ? loaded.problem : '');
    assert.equal(typeof loaded.trim(), 'boolean');
  });

  it('is missing or unusable: serve is told why, nothing throws', () => {
    const missing = loadMallocTrim([join(dir, 'none.node')]);
    assert.match(
      'problem' in missing ? missing.problem : '',
      /no malloc-trim addon at .*none\.node/,
    );
    const notAnAddon = join(dir, 'text.node');
    writeFileSync(notAnAddon, 'not a shared object');
    const broken = loadMallocTrim([notAnAddon]);
    assert.match('problem' in broken ? broken.problem : '', /text\.node does not load: /);
  });
});

describe('releaseFreedMemory: trims once many connections have closed, never on a quiet server', () => {
  let server: Server;
  after(() => server?.close());

  async function closeConnections(port: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.end();
      await once(socket, 'close');
    }
  }

  it('counts closed connections between looks', async () => {
    let trims = 0;
    server = createServer((socket) => socket.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    releaseFreedMemory(server, {
      trim: () => ++trims > 0,
      intervalMs: 50,
      afterCloses: 5,
      logger: pino({ level: 'silent' }),
    });
    await closeConnections(port, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(trims, 0, 'four closes: below the threshold, no trim');
    await closeConnections(port, 1);
    await waitUntil('a trim after the fifth close', () => trims === 1, { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(trims, 1, 'the count starts again after a trim');
  });
});
