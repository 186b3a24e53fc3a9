// The CLI as users get it, with the README's commands, in a fresh copy of this checkout (the files git
// would clone; no dist/, node_modules/ or native build): `npm ci && npm start` on a PATH with Node.js and
// npm but no make or C compiler; `npx lxcfs-webhook certs`; `npm install -g .`; `npm pack` (the release
// artifact, with the helper prebuilt for x64 and arm64 by Debian's compilers), installed with
// `npm install -g ./lxcfs-webhook-<v>.tgz` into a scratch prefix, again without a compiler, then
// `lxcfs-webhook --version`, `kubectl-lxcfs --help`, `kubectl lxcfs` through the real kubectl, and the
// agent's helper on both architectures (arm64 under QEMU user emulation); and the krew manifest against
// krew's rules (internal/index/validation) and krew's install steps (download, sha256, unpack, files,
// symlink), then run through kubectl.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/paths.js';

const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
};
const work = mkdtempSync(join(tmpdir(), 'lxcfs-package-'));
after(() => rmSync(work, { recursive: true, force: true }));

const clone = join(work, 'clone');
const which = (cmd: string) =>
  execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();

/** A PATH with Node.js, npm and a shell only: no make, cc or gcc. */
const bare = join(work, 'bare-bin');
mkdirSync(bare);
for (const tool of ['node', 'npm', 'npx', 'sh', 'env']) symlinkSync(which(tool), join(bare, tool));
const BARE_ENV = {
  HOME: join(work, 'home'),
  PATH: bare,
  npm_config_cache: join(process.env.HOME ?? '/root', '.npm'),
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(cmd, args, {
    cwd: opts.cwd ?? clone,
    env: opts.env ?? BARE_ENV,
    encoding: 'utf8',
    timeout: opts.timeout ?? 300_000,
  });
  assert.equal(
    result.status,
    0,
    `${cmd} ${args.join(' ')} exited ${result.status}: ${result.stderr}${result.stdout}`,
  );
  return result;
}

/** The README's "Installing the CLI" block, commands only. */
function readmeInstallBlock(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block =
    /<!-- cli-install:start[^>]*-->\n```sh\n([\s\S]*?)```\n<!-- cli-install:end -->/.exec(readme);
  assert.ok(block, 'README has the cli-install block');
  return block[1]!
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

describe('the package', () => {
  it("the README's install commands are the ones this test runs", () => {
    assert.deepEqual(readmeInstallBlock(), [
      'npm pack',
      `npm install -g ./lxcfs-webhook-${version}.tgz`,
      'lxcfs-webhook --version',
      'kubectl lxcfs --help',
    ]);
  });

  it('a copy of the checkout as git would clone it', () => {
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
      .split('\0')
      .filter(Boolean);
    for (const f of files) {
      if (!existsSync(join(repoRoot, f))) continue; // deleted, not yet committed
      mkdirSync(dirname(join(clone, f)), { recursive: true });
      cpSync(join(repoRoot, f), join(clone, f));
    }
    assert.equal(existsSync(join(clone, 'dist')), false);
    assert.throws(
      () =>
        execFileSync('sh', ['-c', 'command -v make || command -v cc || command -v gcc'], {
          env: BARE_ENV,
        }),
      'the bare PATH has no compiler',
    );
  });

  it('npm ci && npm start, with Node.js and npm only: serve answers on https://localhost:8443', async () => {
    sh('npm', ['ci', '--offline']);
    // npm start builds and serves; the README's demo binds 8443 and 8080, free ports are asked for here (the machine is shared).
    const child = spawn('npm', ['start', '--', '--port', '0', '--health-port', '0'], {
      cwd: clone,
      env: BARE_ENV,
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await new Promise<void>((resolvePromise, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`npm start did not serve within 240 s:\n${out}`)),
          240_000,
        );
        const poll = setInterval(() => {
          if (/"msg":"serving"/.test(out)) {
            clearInterval(poll);
            clearTimeout(timer);
            resolvePromise();
          }
        }, 200);
        child.on('exit', (code) => {
          clearInterval(poll);
          clearTimeout(timer);
          reject(new Error(`npm start exited ${code}:\n${out}`));
        });
      });
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
    }
    assert.match(
      out,
      /no make or C compiler here: the native helper .* is not built/,
      'the build says what it skipped',
    );
    assert.equal(
      statSync(join(clone, 'dist', 'src', 'cli', 'main.js')).mode & 0o111,
      0o111,
      'the CLI entry is executable',
    );
  });

  it('npx lxcfs-webhook certs --out deploy/overlays/self-managed/generated (README, self-managed install)', () => {
    sh('npx', [
      '--offline',
      'lxcfs-webhook',
      'certs',
      '--out',
      'deploy/overlays/self-managed/generated',
    ]);
    for (const f of ['ca.crt', 'tls.crt', 'secret.yaml', 'cabundle-patch.yaml'])
      assert.ok(existsSync(join(clone, 'deploy/overlays/self-managed/generated', f)), f);
  });

  it('npm install -g . from the clone: lxcfs-webhook and kubectl-lxcfs on PATH, executable', () => {
    const prefix = join(work, 'prefix-clone');
    sh('npm', ['install', '-g', '--offline', '--prefix', prefix, '.']);
    for (const name of ['lxcfs-webhook', 'kubectl-lxcfs']) {
      const r = sh(join(prefix, 'bin', name), ['--version']);
      assert.equal(r.stdout.trim().split(' (')[0], `lxcfs-webhook ${version}`);
    }
  });

  let tarball = '';
  it('npm pack: the release artifact, with the helper prebuilt for linux x64 and arm64 and the dependencies inside', () => {
    // prepack builds again and cross-compiles: it needs the machine's compilers (scripts/setup-system.sh).
    const r = sh('npm', ['pack', '--pack-destination', work], {
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    tarball = join(work, r.stdout.trim().split('\n').at(-1)!);
    assert.equal(tarball, join(work, `lxcfs-webhook-${version}.tgz`));
    const listing = execFileSync('tar', ['tzvf', tarball], { encoding: 'utf8' }).split('\n');
    const entry = (path: string) => listing.find((l) => l.endsWith(` package/${path}`));
    for (const arch of ['x64', 'arm64']) {
      assert.match(entry(`native/prebuilt/linux-${arch}/lxcfs-remount`) ?? '', /^-rwxr-xr-x/, arch);
      assert.ok(entry(`native/prebuilt/linux-${arch}/release-memory.node`), `the addon, ${arch}`);
    }
    assert.match(entry('dist/src/cli/main.js') ?? '', /^-rwxr-xr-x/);
    for (const dep of ['pino', 'yaml', '@peculiar/x509', 'prom-client'])
      assert.ok(entry(`node_modules/${dep}/package.json`), `${dep} bundled`);
    assert.equal(
      listing.some((l) => / package\/(test|bench|dist\/test)\//.test(l)),
      false,
      'no tests in the package',
    );
    const file = (arch: string) =>
      execFileSync('tar', [
        'xzOf',
        tarball,
        `package/native/prebuilt/linux-${arch}/lxcfs-remount`,
      ]).subarray(0, 20);
    // ELF e_machine: 0x3e x86-64, 0xb7 AArch64.
    assert.equal(file('x64')[18], 0x3e);
    assert.equal(file('arm64')[18], 0xb7);
  });

  const prefix = join(work, 'prefix');
  it('npm install -g ./lxcfs-webhook-<v>.tgz without a C compiler or the registry: the commands work', () => {
    sh('npm', ['install', '-g', '--offline', '--prefix', prefix, tarball], { cwd: work });
    for (const name of ['lxcfs-webhook', 'kubectl-lxcfs']) {
      const link = join(prefix, 'bin', name);
      assert.equal(statSync(link).mode & 0o111, 0o111, `${name} is executable`);
    }
    assert.match(
      sh(join(prefix, 'bin', 'lxcfs-webhook'), ['--version']).stdout,
      new RegExp(`^lxcfs-webhook ${version.replace(/\./g, '\\.')} \\(Node\\.js v\\d+`),
    );
    assert.match(
      sh(join(prefix, 'bin', 'kubectl-lxcfs'), ['--help']).stdout,
      /^usage: lxcfs-webhook <command>/,
    );
    const certs = join(work, 'certs-out');
    sh(join(prefix, 'bin', 'lxcfs-webhook'), ['certs', '--out', certs]);
    assert.ok(existsSync(join(certs, 'tls.crt')));
    // The agent finds the prebuilt helper for this machine (its flag default is that path).
    const agentHelp = sh(join(prefix, 'bin', 'lxcfs-webhook'), ['agent', '--help']).stdout;
    assert.match(agentHelp, new RegExp(`native/prebuilt/linux-${process.arch}/lxcfs-remount`));
  });

  it('kubectl finds the plugin on PATH: kubectl lxcfs --help', () => {
    const r = sh(which('kubectl'), ['lxcfs', '--help'], {
      env: { ...BARE_ENV, PATH: `${bare}:${join(prefix, 'bin')}` },
    });
    assert.match(r.stdout, /^usage: lxcfs-webhook <command>/);
  });

  it("the agent's helper runs: lxcfs-remount check (x64), and the arm64 one under QEMU user emulation", () => {
    const installed = join(prefix, 'lib', 'node_modules', 'lxcfs-webhook', 'native', 'prebuilt');
    assert.deepEqual(
      JSON.parse(sh(join(installed, 'linux-x64', 'lxcfs-remount'), ['check']).stdout),
      { ok: true, mountSetattr: true },
    );
    // binfmt_misc runs aarch64 binaries with qemu-aarch64-static (scripts/setup-system.sh registers it).
    const arm = spawnSync(
      join(installed, 'linux-arm64', 'lxcfs-remount'),
      ['read', '/proc/self/stat'],
      { encoding: 'utf8' },
    );
    assert.equal(
      arm.status,
      0,
      `arm64 helper under emulation: ${arm.error?.message ?? ''}${arm.stderr}`,
    );
    assert.equal(JSON.parse(arm.stdout).ok, true);
    // QEMU 7.2's user emulation has no open_tree: `check` runs and reports it, as the helper reports any kernel without it.
    const check = JSON.parse(
      spawnSync(join(installed, 'linux-arm64', 'lxcfs-remount'), ['check'], { encoding: 'utf8' })
        .stdout,
    ) as { ok: boolean; step?: string };
    assert.ok(check.ok || check.step === 'open_tree', JSON.stringify(check));
  });

  it("the krew manifest: krew's validation rules, then installed as krew installs, run by kubectl", () => {
    const manifestText = sh(
      process.execPath,
      [join(clone, 'scripts', 'krew-manifest.mjs'), tarball],
      { env: process.env },
    ).stdout;
    const m = parse(manifestText) as any;
    // internal/index/validation.ValidatePlugin
    assert.equal(m.apiVersion, 'krew.googlecontainertools.github.com/v1alpha2');
    assert.equal(m.kind, 'Plugin');
    assert.match(m.metadata.name, /^[\w-]+$/);
    assert.ok(m.spec.shortDescription && !/[\r\n]/.test(m.spec.shortDescription));
    assert.match(m.spec.version, /^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'semver with a leading v');
    assert.equal(m.spec.version, `v${version}`);
    assert.ok(m.spec.platforms.length > 0);
    for (const p of m.spec.platforms) {
      assert.ok(p.uri);
      assert.match(p.sha256, /^[a-f0-9]{64}$/);
      assert.equal(p.sha256, createHash('sha256').update(readFileSync(tarball)).digest('hex'));
      assert.ok(p.bin);
      assert.ok(
        p.files === undefined ||
          (p.files.length > 0 &&
            p.files.every((f: any) => f.from && f.to && resolve('/', f.to) === resolve('/', f.to))),
      );
      assert.ok(
        p.selector?.matchLabels &&
          Object.keys(p.selector.matchLabels).every((k) => k === 'os' || k === 'arch'),
      );
    }
    assert.deepEqual(
      m.spec.platforms.map(
        (p: any) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`,
      ),
      ['linux/amd64', 'linux/arm64'],
    );

    // internal/installation: unpack, apply `files` (glob from → to), symlink bin/kubectl-<name> → <dir>/<bin>.
    const platform = m.spec.platforms.find(
      (p: any) => p.selector.matchLabels.arch === (process.arch === 'x64' ? 'amd64' : process.arch),
    );
    const krewRoot = join(work, 'krew');
    const staging = join(krewRoot, 'staging');
    const installDir = join(krewRoot, 'store', m.metadata.name, m.spec.version);
    mkdirSync(staging, { recursive: true });
    mkdirSync(installDir, { recursive: true });
    execFileSync('tar', ['xzf', tarball, '-C', staging]);
    for (const op of platform.files) {
      const fromDir = join(staging, dirname(op.from));
      const glob = new RegExp(
        `^${op.from
          .split('/')
          .at(-1)
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')}$`,
      );
      for (const name of readdirSync(fromDir).filter((n) => glob.test(n)))
        cpSync(join(fromDir, name), join(installDir, op.to, name), {
          recursive: true,
          verbatimSymlinks: true,
        });
    }
    const binDir = join(krewRoot, 'bin');
    mkdirSync(binDir);
    const target = join(installDir, platform.bin);
    assert.ok(existsSync(target), `bin ${platform.bin} exists after the files operations`);
    symlinkSync(
      relative(binDir, target),
      join(binDir, `kubectl-${m.metadata.name.replace(/-/g, '_')}`),
    );
    assert.ok(
      lstatSync(join(binDir, 'kubectl-lxcfs')).isSymbolicLink() &&
        readlinkSync(join(binDir, 'kubectl-lxcfs')).startsWith('..'),
    );
    const r = sh(which('kubectl'), ['lxcfs', '--help'], {
      env: { ...BARE_ENV, PATH: `${bare}:${binDir}` },
    });
    assert.match(r.stdout, /^usage: lxcfs-webhook <command>/);
  });
});
