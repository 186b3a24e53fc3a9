// `lxcfs-webhook audit` as users run it (the compiled CLI in a child process, files and stdin), its exit
// codes and messages, and the kubectl plugin: the real kubectl finding `kubectl-lxcfs` on PATH.
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cliPath, fixturePath, repoRoot } from '../helpers/paths.js';
import { runCli, runCommand } from '../helpers/run-cli.js';

const cluster = fixturePath('audit', 'cluster.json');
const clean = fixturePath('audit', 'clean.json');
const work = mkdtempSync(join(tmpdir(), 'audit-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(work, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const list = (items: unknown[]) => ({ apiVersion: 'v1', kind: 'List', items });
const namespace = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

describe('lxcfs-webhook audit', () => {
  it('prints the affected pods and one fix per owner, exit 1', async () => {
    const result = await runCli(['audit', '-f', cluster]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /^NAMESPACE +POD +MODE +FINDING +OWNER +DETAIL$/m);
    assert.match(
      result.stdout,
      /^bank +ledger-\w+-\w+ +required +never-injected +deployment\/ledger +missing eclipse-temurin: 8 files$/m,
    );
    assert.equal(
      result.stdout.match(/kubectl -n bank rollout restart deployment\/ledger/g)?.length,
      1,
      'one command for the two pods',
    );
    assert.match(
      result.stdout,
      /^audited 21 pods in 8 namespaces \(1 finished, not audited\); selected by the webhook: 5 required, 10 enabled, 1 pod-label; 14 affected, 12 owners to fix$/m,
    );
    assert.equal(result.stderr, '');
  });

  it('says so and exits 0 on a clean cluster, from stdin with -f - or with no -f', async () => {
    for (const args of [['-f', '-'], []]) {
      const result = await runCli(['audit', ...args], { stdin: readFileSync(clean, 'utf8') });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        result.stdout,
        'audited 6 pods in 4 namespaces; selected by the webhook: 2 required, 2 enabled, 0 pod-label; none affected\n',
      );
    }
  });

  it('writes the whole report as JSON with -o json', async () => {
    const result = await runCli(['audit', '-o', 'json', '-f', cluster]);
    assert.equal(result.code, 1);
    const report = JSON.parse(result.stdout) as {
      pods: Array<{ finding: { kind: string } }>;
      fixes: unknown[];
    };
    assert.deepEqual([...new Set(report.pods.map((p) => p.finding.kind))].sort(), [
      'never-injected',
      'other-injector',
      'other-root',
      'partially-injected',
    ]);
    assert.equal(report.fixes.length, 12);
  });

  it('reads several files: namespaces in one, pods in another', async () => {
    const items = (JSON.parse(readFileSync(clean, 'utf8')) as { items: Array<{ kind: string }> })
      .items;
    const nsFile = file('ns.json', list(items.filter((o) => o.kind === 'Namespace')));
    const podFile = file('pods.json', {
      apiVersion: 'v1',
      kind: 'PodList',
      items: items.filter((o) => o.kind === 'Pod').map(({ kind: _, ...rest }) => rest),
    });
    const result = await runCli(['audit', '-f', nsFile, '-f', podFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /audited 6 pods/);
  });

  it('audits namespaces labelled mount-lxcfs=enabled only with --mount-lxcfs-label, as the install with that component', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app', namespace: 'legacy', uid: 'u1' },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
      status: { phase: 'Running' },
    };
    const input = file(
      'mount-lxcfs.json',
      list([namespace('legacy', { 'mount-lxcfs': 'enabled' }), pod]),
    );
    assert.equal(
      (await runCli(['audit', '-f', input])).code,
      0,
      'not selected by the default install',
    );
    const result = await runCli(['audit', '--mount-lxcfs-label', '-f', input]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /legacy\s+app\s+enabled\s+never-injected/);
  });

  const unusable: Array<[string, string[], RegExp]> = [
    [
      'not JSON',
      ['-f', file('yaml.txt', 'apiVersion: v1\nkind: List\n')],
      /yaml\.txt: not JSON \(.+\); give what `kubectl get namespaces,pods,replicasets -A -o json` prints/,
    ],
    [
      'not a list',
      [
        '-f',
        file('deploy.json', {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'web' },
        }),
      ],
      /deploy\.json: has kind "Deployment", not a list/,
    ],
    [
      'a list of other kinds',
      [
        '-f',
        file(
          'foo.json',
          list([
            namespace('a'),
            namespace('b'),
            { apiVersion: 'v1', kind: 'Foo', metadata: { name: 'x' } },
          ]),
        ),
      ],
      /foo\.json: item 3 of the list \(items\[2\]\) has kind "Foo"; expected Namespace, Pod or ReplicaSet/,
    ],
    [
      'a List without items',
      ['-f', file('empty.json', { apiVersion: 'v1', kind: 'List' })],
      /the List has no items; expected a list of objects/,
    ],
    [
      'no namespaces',
      [
        '-f',
        file(
          'pods-only.json',
          list([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'a' } }]),
        ),
      ],
      /no namespaces given: the webhook selects pods by their namespace's labels/,
    ],
    [
      'a pod of an unlisted namespace',
      [
        '-f',
        file(
          'partial.json',
          list([
            namespace('a'),
            { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'b' } },
          ]),
        ),
      ],
      /pods in namespaces the input does not list: b; list namespaces and pods together/,
    ],
    [
      'a pod without namespace',
      [
        '-f',
        file(
          'nons.json',
          list([namespace('a'), { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }]),
        ),
      ],
      /item 2 of the list \(items\[1\]\) \(Pod p\) has no metadata.namespace/,
    ],
    ['a missing file', ['-f', join(work, 'nope.json')], /-f .*nope\.json: file not found/],
    [
      'an output it cannot write',
      ['-o', 'yaml', '-f', clean],
      /flag --output has value "yaml"; expected table or json/,
    ],
    [
      'an unknown flag',
      ['--all', '-f', clean],
      /unknown flag --all; see 'lxcfs-webhook audit --help'/,
    ],
  ];
  for (const [what, args, message] of unusable) {
    it(`exits 2 on ${what}, saying why`, async () => {
      const result = await runCli(['audit', ...args]);
      assert.equal(result.code, 2, result.stdout);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, message);
    });
  }
});

describe('the kubectl plugin kubectl-lxcfs', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
  };
  // What npm does when it installs the package: a `kubectl-lxcfs` link to the bin file, made executable.
  const bin = mkdtempSync(join(tmpdir(), 'kubectl-plugin-'));
  after(() => rmSync(bin, { recursive: true, force: true }));
  const target = join(repoRoot, pkg.bin['kubectl-lxcfs'] ?? 'missing');
  symlinkSync(target, join(bin, 'kubectl-lxcfs'));
  chmodSync(target, statSync(target).mode | 0o111);
  const kubectl = (args: string[], stdin = '') =>
    runCommand('kubectl', args, {
      stdin,
      env: {
        ...process.env,
        PATH: `${bin}:${join(process.execPath, '..')}:${process.env.PATH ?? ''}`,
      },
    });

  it('is installed by the package as the same program as lxcfs-webhook', () => {
    assert.equal(pkg.bin['kubectl-lxcfs'], pkg.bin['lxcfs-webhook']);
    assert.equal(target, cliPath);
  });
  it('is found by kubectl on PATH', async () => {
    const result = await kubectl(['plugin', 'list']);
    assert.match(result.stdout, new RegExp(`${bin}/kubectl-lxcfs`), result.stderr);
  });
  it('runs `kubectl lxcfs audit -f FILE` and from stdin, with its exit code', async () => {
    const found = await kubectl(['lxcfs', 'audit', '-f', cluster]);
    assert.equal(found.code, 1, found.stderr);
    assert.match(found.stdout, /kubectl -n shop rollout restart statefulset\/db/);
    const piped = await kubectl(['lxcfs', 'audit'], readFileSync(clean, 'utf8'));
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /none affected/);
  });
  it('runs the other commands: `kubectl lxcfs inject -f`, `kubectl lxcfs --help`', async () => {
    const injected = await kubectl([
      'lxcfs',
      'inject',
      '-f',
      join(repoRoot, 'examples', 'web.yaml'),
    ]);
    assert.equal(injected.code, 0, injected.stderr);
    assert.match(injected.stdout, /lxcfs-proc-meminfo/);
    const help = await kubectl(['lxcfs', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /audit +find running pods/);
  });
});
