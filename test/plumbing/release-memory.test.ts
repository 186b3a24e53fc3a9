import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { RELEASE_MEMORY_ADDON_CANDIDATES } from '../../src/config/defaults.js';
import {
  loadReleaseMemory,
  releaseCodeAfterBursts,
  releaseFreedMemory,
} from '../../src/plumbing/release-memory.js';
import { waitUntil } from '../helpers/wait.js';

describe('the release-memory addon (native/release-memory.c)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-webhook-release-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads into this Node.js, calls malloc_trim and pages code out', () => {
    const loaded = loadReleaseMemory(RELEASE_MEMORY_ADDON_CANDIDATES);
    assert.ok(loaded.addon, 'problem' in loaded ? loaded.problem : '');
    assert.equal(typeof loaded.addon.trim(), 'boolean');
    // The node binary alone maps tens of MiB read-only.
    assert.ok(loaded.addon.pageOutCode() > 20 * 2 ** 20);
  });

  it('is missing or unusable: the command is told why, nothing throws', () => {
    const missing = loadReleaseMemory([join(dir, 'none.node')]);
    assert.match(
      'problem' in missing ? missing.problem : '',
      /no release-memory addon at .*none\.node/,
    );
    const notAnAddon = join(dir, 'text.node');
    writeFileSync(notAnAddon, 'not a shared object');
    const broken = loadReleaseMemory([notAnAddon]);
    assert.match('problem' in broken ? broken.problem : '', /text\.node does not load: /);
  });

  it("gives a process's code pages back: its RSS drops, and it runs on as before", async () => {
    // A node binary no other process maps, as the agent's is in its pod (pages another process maps are
    // skipped by the kernel). On disk, not tmpfs: tmpfs pages could only go to swap. dist/ is on disk.
    const own = mkdtempSync(fileURLToPath(new URL('../../.node-copy-', import.meta.url)));
    after(() => rmSync(own, { recursive: true, force: true }));
    const node = join(own, 'node');
    copyFileSync(process.execPath, node);
    const script = `
      const addon = { exports: {} };
      process.dlopen(addon, ${JSON.stringify(loadedAddonPath())});
      const rss = () => process.memoryUsage.rss() / 2 ** 20;
      const before = rss();
      const advised = addon.exports.pageOutCode();
      const paged = rss();
      // Code that has to be read back: a module not loaded yet, compiled and run.
      const zlib = require('node:zlib');
      const roundTrip = zlib.gunzipSync(zlib.gzipSync('lxcfs')).toString();
      console.log(JSON.stringify({ before, advised, paged, roundTrip }));`;
    const { stdout } = await promisify(execFile)(node, ['-e', script]);
    const result = JSON.parse(stdout) as Record<string, number | string>;
    assert.ok(Number(result.advised) > 20 * 2 ** 20, stdout);
    assert.ok(
      Number(result.before) - Number(result.paged) > 10,
      `RSS ${Number(result.before).toFixed(1)} → ${Number(result.paged).toFixed(1)} MiB: expected at least 10 MiB given back`,
    );
    assert.equal(result.roundTrip, 'lxcfs');
  });
});

/** The addon loadReleaseMemory loads. */
function loadedAddonPath(): string {
  const found = RELEASE_MEMORY_ADDON_CANDIDATES.find((path) => existsSync(path));
  assert.ok(found, `no addon among ${RELEASE_MEMORY_ADDON_CANDIDATES.join(', ')}`);
  return found;
}

describe('releaseCodeAfterBursts: pages code out once quiet after the last burst', () => {
  it('waits out a series of bursts, then pages out once; a kernel without MADV_PAGEOUT is told once', async () => {
    const lines: { msg?: string; errno?: number; advisedMiB?: number }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    let calls = 0;
    const release = releaseCodeAfterBursts({
      pageOutCode: () => (++calls, 64 * 2 ** 20),
      quietMs: 150,
      logger,
    });
    for (let i = 0; i < 4; i++) {
      release.burstOver();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(calls, 0, 'each burst within the quiet time starts it again');
    await waitUntil('one page-out', () => calls === 1, { timeoutMs: 5_000 });
    assert.equal(lines.at(-1)?.msg, 'code pages given back');
    assert.equal(lines.at(-1)?.advisedMiB, 64);

    let oldKernelCalls = 0;
    const old = releaseCodeAfterBursts({
      pageOutCode: () => (++oldKernelCalls, -22),
      quietMs: 10,
      logger,
    });
    old.burstOver();
    await waitUntil('the page-out tried', () => oldKernelCalls === 1, { timeoutMs: 5_000 });
    assert.equal(lines.at(-1)?.errno, 22);
    old.burstOver();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(oldKernelCalls, 1, 'not tried again');
    release.stop();
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
