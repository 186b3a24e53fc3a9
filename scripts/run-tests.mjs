// Runs every compiled test file under Node 20 (this process's node) and then under Node 24 LTS,
// because images ship Node 24 while the code must still run on 20. Node 20's `--test` neither expands
// globs nor finds files on its own, so the list is built here and an empty list is a failure.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.js') ? [path] : [];
  }).sort();
}

const only = process.argv.slice(2);
const files = testFiles(join(root, 'dist', 'test'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('run-tests: found no test files under dist/test (did the build run?)');
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);

const runtimes = [
  { name: `node ${process.version}`, cmd: process.execPath, args: [] },
  { name: 'node 24 (npx node@24)', cmd: 'npx', args: ['-y', 'node@24'] },
];
if (process.env.TEST_NODE24 === '0') runtimes.pop();

let failed = false;
for (const rt of runtimes) {
  console.log(`\n=== ${rt.name} ===`);
  const res = spawnSync(rt.cmd, [...rt.args, '--test', '--test-concurrency=1', ...files.map((f) => relative(root, f))], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: '--enable-source-maps' },
  });
  if (res.status !== 0) {
    console.error(`run-tests: ${rt.name} failed (exit ${res.status ?? res.signal})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
