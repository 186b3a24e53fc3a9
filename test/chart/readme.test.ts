// The README's Helm section stays true: its values table is the one values.yaml makes, and every shell
// block of it that runs helm is run, command by command, on the Helm model (Helm 3 and Helm 4; hook Jobs
// and `helm test` run for real), with the kubectl commands it shows modelled too. A block with
// `helm install` starts on an empty cluster (the README's namespace commands first, when the block has
// none); a block without one goes on where the last left off (an upgrade after its install, the
// uninstall after the last install). Every command must succeed, and after each block the webhook is
// trusted or, after an uninstall, nothing of the release is left.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import { repoRoot } from '../helpers/paths.js';
import { certManager, serviceCaOperator } from '../helm/controllers.js';
import type { HelmVersion } from '../helm/helm.js';
import { chartDir } from './render.js';
import { README, readmeTable, valueRows, valuesTable } from './values-table.js';
import * as scenario from './scenarios.js';

const readme = readFileSync(README, 'utf8');

describe('README: Helm values table', () => {
  it('documents every value in values.yaml with a `# --` comment', () =>
    assert.deepEqual(valueRows().undocumented, []));
  it('is the table values.yaml makes (node dist/test/chart/values-table.js --write)', () => {
    assert.equal(readmeTable(readme), valuesTable());
  });
});

/** The shell blocks of the README's install section that run helm, in order. */
function helmBlocks(): string[][] {
  const section = readme.slice(
    readme.indexOf('## Install on a cluster'),
    readme.indexOf('## Choosing pods'),
  );
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) =>
      m[1]!
        .split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter((l) => l !== ''),
    )
    .filter((lines) => lines.some((l) => l.startsWith('helm ')));
}

/** Shell words: '…' and "…" quoting, $VAR expansion from `vars`. */
function words(line: string, vars: Record<string, string>): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) {
    out.push(
      m[1] ??
        (m[2] ?? m[3]!).replace(/\$([A-Z_]+)/g, (_, v: string) => {
          assert.ok(v in vars, `$${v} is set by an earlier line`);
          return vars[v]!;
        }),
    );
  }
  return out;
}

/** Files the README's commands read (tls.crt, tls.key, ca.crt): a pair for the Service and its CA. */
async function userFiles(): Promise<Record<string, string>> {
  const ca = await createCA({ commonName: 'my CA', validDays: 30 });
  const cert = await issueServingCert(ca, ['lxcfs-webhook.lxcfs.svc'], { validDays: 30 });
  return { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem, 'ca.crt': ca.certPem };
}

/** Flags of a helm command, as its parser reads them; any flag the model does not know fails the test. */
function helmFlags(args: string[]) {
  const o = {
    positional: [] as string[],
    namespace: 'default',
    set: [] as string[],
    setString: [] as string[],
    createNamespace: false,
    resetThenReuseValues: false,
    reuseValues: false,
    noHooks: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => args[++i]!;
    if (a === '--namespace' || a === '-n') o.namespace = value();
    else if (a === '--set') o.set.push(value());
    else if (a === '--set-string') o.setString.push(value());
    else if (a === '--create-namespace') o.createNamespace = true;
    else if (a === '--reset-then-reuse-values') o.resetThenReuseValues = true;
    else if (a === '--reuse-values') o.reuseValues = true;
    else if (a === '--no-hooks') o.noHooks = true;
    else if (a === '--wait') {
      /* hook Jobs are waited for; workloads are taken as ready */
    } else if (a.startsWith('-')) assert.fail(`helm flag ${a} is not modelled`);
    else o.positional.push(a);
  }
  return o;
}

async function run(
  w: scenario.World,
  line: string,
  vars: Record<string, string>,
  files: Record<string, string>,
): Promise<void> {
  const assignment = /^([A-Z_]+)=\$\(base64 -w0 (\S+)\)$/.exec(line);
  if (assignment) {
    vars[assignment[1]!] = Buffer.from(files[assignment[2]!]!).toString('base64');
    return;
  }
  const [tool, ...args] = words(line, vars);
  if (tool === 'kubectl') return kubectl(w, args, files);
  assert.equal(tool, 'helm', `${line}: only helm and kubectl are modelled`);
  const [verb, ...rest] = args;
  const f = helmFlags(rest);
  const chart = () => {
    assert.equal(f.positional[1], './charts/lxcfs-webhook', line);
    return chartDir;
  };
  switch (verb) {
    case 'install':
      await w.helm.install(f.positional[0]!, chart(), {
        namespace: f.namespace,
        set: f.set,
        setString: f.setString,
        createNamespace: f.createNamespace,
        noHooks: f.noHooks,
      });
      break;
    case 'upgrade':
      await w.helm.upgrade(f.positional[0]!, chart(), {
        namespace: f.namespace,
        set: f.set,
        setString: f.setString,
        resetThenReuseValues: f.resetThenReuseValues,
        reuseValues: f.reuseValues,
        noHooks: f.noHooks,
      });
      break;
    case 'uninstall':
      await w.helm.uninstall(f.positional[0]!, { namespace: f.namespace, noHooks: f.noHooks });
      break;
    case 'test':
      await w.helm.test(f.positional[0]!, { namespace: f.namespace });
      break;
    default:
      assert.fail(`helm ${verb} is not modelled`);
  }
  await certManager(w.cluster);
  await serviceCaOperator(w.cluster);
}

/** The kubectl commands the section shows, on the cluster model. */
function kubectl(w: scenario.World, args: string[], files: Record<string, string>): void {
  let namespace = 'default';
  const rest = args.filter((a, i) => {
    if (a === '-n' || a === '--namespace') {
      namespace = args[i + 1]!;
      return false;
    }
    return args[i - 1] !== '-n' && args[i - 1] !== '--namespace';
  });
  const [verb, kind, name, ...more] = rest;
  const line = `kubectl ${args.join(' ')}`;
  const pairs = (list: string[]) =>
    Object.fromEntries(
      list.filter((a) => !a.startsWith('--')).map((a) => a.split('=') as [string, string]),
    );
  if (verb === 'create' && kind === 'namespace') {
    w.cluster.create({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: name!, labels: { 'kubernetes.io/metadata.name': name! } },
    });
  } else if ((verb === 'label' || verb === 'annotate') && kind === 'namespace') {
    const ns = w.cluster.get({ kind: 'Namespace', name: name! });
    const field = verb === 'label' ? 'labels' : 'annotations';
    ns.metadata[field] = { ...ns.metadata[field], ...pairs(more) };
    w.cluster.update(ns);
  } else if (verb === 'create' && kind === 'secret' && name === 'tls') {
    const flag = (n: string) => more.find((a) => a.startsWith(`--${n}=`))!.split('=')[1]!;
    const b64 = (file: string) => Buffer.from(files[file]!).toString('base64');
    w.cluster.create({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: more[0]!, namespace },
      data: { 'tls.crt': b64(flag('cert')), 'tls.key': b64(flag('key')) },
    });
  } else if (verb === 'delete' && kind === 'namespace') {
    w.cluster.delete({ kind: 'Namespace', name: name! });
    w.cluster.settle();
  } else {
    assert.fail(`${line} is not modelled`);
  }
}

const blocks = helmBlocks();
const worlds: scenario.World[] = [];
after(async () => {
  for (const w of worlds) await w.runner.close();
});

describe('README: the Helm section', () => {
  it('shows the namespace, install, test, upgrade and uninstall commands', () => {
    assert.ok(blocks.length >= 5, `${blocks.length} blocks`);
    const all = blocks.flat().join('\n');
    for (const re of [
      /^kubectl create namespace lxcfs$/m,
      /^kubectl label namespace lxcfs /m,
      /^helm install /m,
      /^helm test /m,
      /^helm upgrade /m,
      /^helm uninstall /m,
    ])
      assert.match(all, re);
  });
  it("labels the namespace as deploy/base/namespace.yaml does (the kustomize install and the chart's checks agree)", () => {
    const label = blocks.flat().find((l) => l.startsWith('kubectl label namespace lxcfs '))!;
    const base = parse(readFileSync(`${repoRoot}/deploy/base/namespace.yaml`, 'utf8')) as {
      metadata: { labels: Record<string, string> };
    };
    const podSecurity = Object.fromEntries(
      Object.entries(base.metadata.labels).filter(([k]) =>
        k.startsWith('pod-security.kubernetes.io/'),
      ),
    );
    assert.deepEqual(
      Object.fromEntries(
        label
          .split(' ')
          .slice(4)
          .map((p) => p.split('=')),
      ),
      podSecurity,
    );
  });
  for (const version of [3, 4] as HelmVersion[]) {
    it(`every Helm block runs on Helm ${version}, in order`, async () => {
      const setup = blocks[0]!.filter(
        (l) => l.startsWith('kubectl create namespace') || l.startsWith('kubectl label namespace'),
      );
      assert.equal(setup.length, 2, 'the first block makes and labels the namespace');
      const files = await userFiles();
      const vars: Record<string, string> = {};
      let w: scenario.World | undefined;
      for (const block of blocks) {
        if (block.some((l) => l.startsWith('helm install '))) {
          w = scenario.world(version, chartDir);
          worlds.push(w);
          if (!block.some((l) => l.startsWith('kubectl create namespace')))
            for (const line of setup) await run(w, line, vars, files);
        }
        assert.ok(w, `block "${block[0]}" comes after an install`);
        for (const line of block) {
          await run(w, line, vars, files).catch((err: Error) =>
            assert.fail(
              `Helm ${version}: ${line}\n  ${err.message}\n  ${w!.helm.output.join('\n  ')}`,
            ),
          );
        }
        if (w.helm.status('lxcfs-webhook', 'lxcfs')?.status === 'deployed') {
          scenario.assertTrusted(w);
        } else {
          assert.deepEqual(
            w.cluster
              .list()
              .filter(
                (o) =>
                  o.metadata.labels?.['app.kubernetes.io/part-of'] === 'lxcfs-webhook' &&
                  o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'Helm',
              ),
            [],
            `after "${block.at(-1)}" nothing of the release is left`,
          );
        }
      }
    });
  }
});
