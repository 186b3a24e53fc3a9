// Static checks of the image build files: stages and COPY sources exist, nothing is downloaded but
// distribution and npm packages, the entry point is the package's CLI, the base images default to the
// real public ones (tests build them on stand-ins, scripts/vm/build-images.sh, and run them in VM guests:
// scripts/vm/), and the images the manifests name carry this package's version.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AGENT_NODE_FLAGS, WEBHOOK_NODE_FLAGS } from '../../src/config/defaults.js';
import { repoRoot } from '../helpers/paths.js';
import { find, kustomize } from '../deploy/render.js';

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

/** Global `ARG NAME=default` lines before the first FROM: the bases, overridable with --build-arg. */
function argDefaults(name: string): Map<string, string> {
  const text = readFileSync(join(repoRoot, 'images', name), 'utf8');
  const head = text.slice(0, text.search(/^FROM /m));
  return new Map(
    [...head.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
  );
}

/** Instructions, with FROM's `${ARG}` replaced by the default: the image users get without build args. */
function parseDockerfile(name: string): Instruction[] {
  const text = readFileSync(join(repoRoot, 'images', name), 'utf8').replace(/\\\n/g, ' ');
  const defaults = argDefaults(name);
  let stage = '';
  let seenFrom = false;
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .flatMap((line) => {
      const [op, ...rest] = line.split(/\s+/);
      let args = rest.join(' ');
      if (op!.toUpperCase() === 'ARG' && !seenFrom) return [];
      if (op!.toUpperCase() === 'FROM') {
        seenFrom = true;
        args = args.replace(/\$\{(\w+)\}/g, (_, arg: string) => {
          const value = defaults.get(arg);
          assert.ok(value, `FROM \${${arg}} has a default in a global ARG`);
          return value;
        });
        stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? '(final)';
        // FROM --platform=$BUILDPLATFORM: a build stage on the builder's architecture.
        args = args.replace(/^--platform=\$BUILDPLATFORM\s+/, '');
      }
      return [{ op: op!.toUpperCase(), args, stage }];
    });
}

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
};

function checkCommon(instructions: Instruction[]): void {
  const stages = new Set(instructions.filter((i) => i.op === 'FROM').map((i) => i.stage));
  for (const copy of instructions.filter((i) => i.op === 'COPY')) {
    const from = /--from=(\S+)/.exec(copy.args)?.[1];
    const sources = copy.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1);
    if (from) {
      assert.ok(stages.has(from), `COPY --from=${from} names a stage`);
    } else {
      for (const source of sources)
        assert.ok(
          existsSync(join(repoRoot, source)),
          `COPY source ${source} exists in the repository`,
        );
    }
  }
  for (const i of instructions) {
    assert.notEqual(i.op, 'ADD', 'ADD can fetch URLs; COPY only copies');
    assert.ok(!/\b(curl|wget)\b|https?:\/\//.test(i.args), `no download step: ${i.op} ${i.args}`);
    if (i.op === 'RUN' && i.args.includes('npm '))
      assert.match(i.args, /npm (ci|prune)/, 'npm installs from the lock file only');
  }
  const entry = JSON.parse(
    instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1)!.args,
  ) as string[];
  assert.equal(
    entry.at(-1),
    `/app/${pkg.bin['lxcfs-webhook']}`,
    'the entry point is the package CLI',
  );
}

describe('images/webhook.Dockerfile', () => {
  const instructions = parseDockerfile('webhook.Dockerfile');
  it('builds the CLI only and runs it non-root on Node 24', () => {
    checkCommon(instructions);
    const final = instructions.filter((i) => i.stage === '(final)');
    assert.match(final[0]!.args, /distroless\/nodejs24-debian12:nonroot/);
    assert.equal(final.find((i) => i.op === 'USER')?.args, '65532:65532');
    assert.ok(
      !final.some((i) => i.op === 'RUN'),
      'nothing runs in the final image: it has no shell',
    );
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    assert.deepEqual(
      entry.slice(1, -1),
      [...WEBHOOK_NODE_FLAGS],
      'the webhook runs with the Node flags the benchmark measured',
    );
    // RELEASE_MEMORY_ADDON_CANDIDATES resolves to native/build/ beside dist/, i.e. /app/native/build here.
    assert.ok(
      instructions.some(
        (i) =>
          i.stage === 'native' &&
          i.op === 'RUN' &&
          i.args.includes('cross-make.sh /src/native build/release-memory.node'),
      ),
      'the release-memory addon, cross-compiled for the target',
    );
    const addon = final.find((i) => i.op === 'COPY' && i.args.includes('--from=native'));
    assert.match(addon?.args ?? '', /\.\/native\/build\/release-memory\.node$/);
  });
});

describe('images/cross-make.sh', () => {
  it("picks Debian's cross compiler for each image architecture", () => {
    const script = readFileSync(join(repoRoot, 'images', 'cross-make.sh'), 'utf8');
    assert.match(script, /amd64\) triplet=x86_64-linux-gnu packages="gcc-x86-64-linux-gnu /);
    assert.match(script, /arm64\) triplet=aarch64-linux-gnu packages="gcc-aarch64-linux-gnu /);
  });
});

describe('images/agent.Dockerfile', () => {
  const instructions = parseDockerfile('agent.Dockerfile');
  it("ships Debian's lxcfs 7.0.0 on Debian 13's libraries, fuse3, the native helper built from native/, and the CLI on Node 24", () => {
    checkCommon(instructions);
    const final = instructions.filter((i) => i.stage === '(final)');
    // Debian 13 libraries (see README, "Which lxcfs"); every stage on the same Debian.
    assert.match(final[0]!.args, /^node:24-trixie-slim$/);
    assert.ok(
      instructions
        .filter((i) => i.op === 'FROM')
        .every((i) => i.args.startsWith('node:24-trixie-slim')),
    );
    // lxcfs: exactly Debian's 7.0.0-1 for the target architecture, fetched by apt (checked against sid's
    // signed index) in its own stage; sid never reaches the image, whose other packages stay Debian 13's.
    const lxcfs = instructions.filter((i) => i.stage === 'lxcfs');
    assert.ok(lxcfs.some((i) => i.op === 'ARG' && i.args === 'LXCFS_VERSION=7.0.0-1'));
    assert.ok(lxcfs.some((i) => i.op === 'ARG' && i.args === 'LXCFS_SUITE=sid'));
    assert.ok(
      lxcfs.some(
        (i) =>
          i.op === 'RUN' && i.args.includes('apt-get download "lxcfs:$TARGETARCH=$LXCFS_VERSION"'),
      ),
    );
    assert.ok(
      !lxcfs.some((i) => i.op === 'COPY'),
      'the stage uses no repository file, so the layer cache keeps it',
    );
    assert.ok(!final.some((i) => /\bsid\b|LXCFS_SUITE/.test(i.args)), 'no sid source in the image');
    assert.ok(
      final.some(
        (i) => i.op === 'COPY' && i.args === '--from=lxcfs /lxcfs/lxcfs_*.deb /tmp/lxcfs/',
      ),
    );
    // Build stages on the builder's architecture (no compiling or downloading under emulation), the final
    // one on the target's.
    const text = readFileSync(join(repoRoot, 'images', 'agent.Dockerfile'), 'utf8');
    assert.deepEqual(
      [...text.matchAll(/^FROM (.*)$/gm)].map((m) => m[1]),
      [
        '--platform=$BUILDPLATFORM ${BUILD_BASE} AS lxcfs',
        '--platform=$BUILDPLATFORM ${BUILD_BASE} AS native',
        '--platform=$BUILDPLATFORM ${BUILD_BASE} AS build',
        '${BASE}',
      ],
    );
    assert.ok(
      final.some(
        (i) =>
          i.op === 'RUN' &&
          /apt-get install .*\/tmp\/lxcfs\/lxcfs_\*\.deb fuse3 util-linux/.test(i.args),
      ),
      'nsenter for the host cgroup namespace',
    );
    const lxcfsInstall = final.findIndex((i) => i.op === 'RUN' && i.args.includes('/tmp/lxcfs/'));
    assert.ok(
      lxcfsInstall < final.findIndex((i) => i.op === 'COPY' && i.args.includes('--from=build')),
      'lxcfs is installed before the app is copied: a code change keeps its layer',
    );
    const native = instructions.filter((i) => i.stage === 'native');
    assert.ok(
      native.some(
        (i) =>
          i.op === 'RUN' &&
          i.args.includes(
            'cross-make.sh /src/native build/lxcfs-remount build/release-memory.node',
          ) &&
          i.args.includes('-static'),
      ),
      'a static helper and the release-memory addon, cross-compiled for the target',
    );
    const helper = final.find((i) => i.op === 'COPY' && i.args.includes('--from=native'));
    // DEFAULT_REMOUNT_HELPER and RELEASE_MEMORY_ADDON_CANDIDATES resolve to native/build/ beside dist/,
    // i.e. /app/native/build here.
    assert.equal(
      helper?.args,
      '--from=native /src/native/build/lxcfs-remount /src/native/build/release-memory.node ./native/build/',
    );
    assert.equal(final.find((i) => i.op === 'WORKDIR')?.args, '/app');
  });

  it('runs the agent with the Node flags the benchmark measured, which the DaemonSet keeps', () => {
    const final = instructions.filter((i) => i.stage === '(final)');
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    assert.deepEqual(entry.slice(1, -1), [...AGENT_NODE_FLAGS]);
    // The chart renders the same DaemonSet (test/chart/chart.test.ts): neither replaces the entry point.
    const agent = find(
      kustomize(join(repoRoot, 'deploy', 'overlays', 'cert-manager')),
      'DaemonSet',
      'lxcfs-agent',
    ).spec.template.spec.containers[0] as { command?: unknown; args: string[] };
    assert.equal(agent.command, undefined);
    assert.equal(agent.args[0], 'agent');
  });
});

describe('lxcfs-webhook on PATH in both images, for kubectl exec … -- lxcfs-webhook check node', () => {
  it("webhook image: a node script at /usr/local/bin/lxcfs-webhook, run by the image's node (no shell, no env)", () => {
    const final = parseDockerfile('webhook.Dockerfile').filter((i) => i.stage === '(final)');
    const copy = final.find(
      (i) => i.op === 'COPY' && i.args.endsWith(' /usr/local/bin/lxcfs-webhook'),
    );
    assert.match(copy?.args ?? '', /^--chmod=755 images\/lxcfs-webhook\.cjs /);
    const launcher = readFileSync(join(repoRoot, 'images', 'lxcfs-webhook.cjs'), 'utf8');
    assert.equal(
      launcher.split('\n')[0],
      '#!/nodejs/bin/node',
      'distroless keeps node at /nodejs/bin/node',
    );
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    assert.ok(launcher.includes(`import('${entry.at(-1)}')`), "it loads the entry point's CLI");
  });

  it("webhook image's launcher runs the CLI with its arguments (here with this node and this checkout)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'launcher-'));
    try {
      const launcher = join(dir, 'lxcfs-webhook');
      writeFileSync(
        launcher,
        readFileSync(join(repoRoot, 'images', 'lxcfs-webhook.cjs'), 'utf8')
          .replace('#!/nodejs/bin/node', `#!${process.execPath}`)
          .replace("'/app/", `'${repoRoot}/`),
      );
      chmodSync(launcher, 0o755);
      const result = spawnSync(launcher, ['--version'], { encoding: 'utf8', cwd: dir });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, `lxcfs-webhook ${pkg.version} (Node.js ${process.version})\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('agent image: a link to the CLI, made executable, whose #!/usr/bin/env node line runs it', () => {
    const final = parseDockerfile('agent.Dockerfile').filter((i) => i.stage === '(final)');
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    const main = entry.at(-1)!;
    assert.ok(
      final.some(
        (i) =>
          i.op === 'RUN' &&
          i.args.includes(`chmod 755 ${main}`) &&
          i.args.includes(`ln -s ${main} /usr/local/bin/lxcfs-webhook`),
      ),
    );
    assert.equal(
      readFileSync(join(repoRoot, 'src', 'cli', 'main.ts'), 'utf8').split('\n')[0],
      '#!/usr/bin/env node',
    );
  });
});

describe('images named by the manifests', () => {
  it("carry this package's version", () => {
    const objects = kustomize(join(repoRoot, 'deploy', 'overlays', 'cert-manager'));
    const images = [
      find(objects, 'Deployment', 'lxcfs-webhook'),
      find(objects, 'DaemonSet', 'lxcfs-agent'),
    ].map((o) => o.spec.template.spec.containers[0].image as string);
    for (const image of images)
      assert.ok(image.endsWith(`:${pkg.version}`), `${image} is tagged ${pkg.version}`);
  });
});
