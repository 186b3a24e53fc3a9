// `npm run build`: the TypeScript, and the CLI's entry made executable (npm links it as lxcfs-webhook and
// kubectl-lxcfs, and kubectl runs a plugin only when it is executable). The agent's native helper is built
// too where this machine has make and a C compiler; without them every command but `agent` works, and
// `npm run build:native` is the step that requires them (npm test runs it).
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status === 0;
const onPath = (cmd) =>
  spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

rmSync(join(root, 'dist'), { recursive: true, force: true });
if (
  !run(process.execPath, [
    join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    'tsconfig.json',
  ])
)
  process.exit(1);
const { bin } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of new Set(Object.values(bin))) chmodSync(join(root, file), 0o755);

if (onPath('make') && onPath(process.env.CC ?? 'cc')) {
  if (!run('make', ['-s', '-C', 'native'])) process.exit(1);
} else {
  console.error(
    'build: no make or C compiler here: the native helper (native/build/lxcfs-remount) is not built; ' +
      'every command but `agent` works without it (npm run build:native builds it)',
  );
}
