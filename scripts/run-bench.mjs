// Runs every compiled benchmark (dist/bench/*.js) in turn, each in its own Node process so one's
// memory and JIT state do not colour the next. Fails if any benchmark fails or none is found.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('../dist/bench/', import.meta.url).pathname;
let files;
try {
  files = readdirSync(dir)
    .filter((name) => name.endsWith('.js'))
    .sort();
} catch {
  files = [];
}
if (files.length === 0) {
  console.error('run-bench: found no benchmarks in dist/bench (did the build run?)');
  process.exit(1);
}

let failed = false;
for (const name of files) {
  console.log(`\n=== ${name.replace(/\.js$/, '')} ===`);
  const run = spawnSync(process.execPath, [join(dir, name)], { stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`run-bench: ${name} failed (exit ${run.status ?? run.signal})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
