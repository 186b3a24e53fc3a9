// The README's Helm section stays true: its values table is the one values.yaml makes, and every
// `helm install` / `helm upgrade` command it shows is rendered here (upgrades against what the install
// before them put in the cluster) and must give valid objects.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { find, type K8sObject } from '../deploy/render.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { releaseObjects, renderChart } from './render.js';
import { README, readmeTable, valueRows, valuesTable } from './values-table.js';
import { localhostCertificate } from '../../src/admission/self-signed.js';

const readme = readFileSync(README, 'utf8');
const localhostCa = await localhostCertificate();

describe('README: Helm values table', () => {
  it('documents every value in values.yaml with a `# --` comment', () =>
    assert.deepEqual(valueRows().undocumented, []));
  it('is the table values.yaml makes (node dist/test/chart/values-table.js --write)', () => {
    assert.equal(readmeTable(readme), valuesTable());
  });
});

interface HelmCommand {
  line: string;
  verb: 'install' | 'upgrade';
  release: string;
  namespace: string;
  values: Record<string, unknown>;
}

/** What the README's shell variables stand for when its commands are rendered here. */
const SHELL_VARIABLES: Record<string, string> = {
  // CA_BUNDLE=$(base64 -w0 ca.crt): a real CA's PEM, base64-encoded, as the API server wants it.
  CA_BUNDLE: Buffer.from(localhostCa.caCertPem).toString('base64'),
};

/** `--set a.b=c` as Helm's strvals reads simple values: true/false and integers typed, the rest strings. */
function setValue(values: Record<string, unknown>, assignment: string): void {
  const match = /^([A-Za-z0-9_.-]+)=([^,[\]{}]*)$/.exec(assignment);
  if (!match) throw new Error(`--set ${assignment}: only a.b=value is read by this test`);
  const path = match[1]!.split('.');
  const raw = match[2]!.replace(/\$([A-Z_]+)/g, (_, name: string) => {
    const value = SHELL_VARIABLES[name];
    if (value === undefined)
      throw new Error(`--set ${assignment}: $${name} has no stand-in in this test`);
    return value;
  });
  const value =
    raw === 'true' ? true : raw === 'false' ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw;
  let at = values;
  for (const key of path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
  at[path.at(-1)!] = value;
}

/** Every helm install/upgrade line in the README, parsed; any flag it does not know fails the test. */
function helmCommands(): HelmCommand[] {
  return readme
    .split('\n')
    .filter((l) => /^helm (install|upgrade) /.test(l))
    .map((line) => {
      const words = line.replace(/#.*/, '').trim().split(/\s+/);
      const [, verb, release, chart, ...flags] = words;
      assert.equal(chart, './charts/lxcfs-webhook', line);
      const cmd: HelmCommand = {
        line,
        verb: verb as HelmCommand['verb'],
        release: release!,
        namespace: 'default',
        values: {},
      };
      for (let i = 0; i < flags.length; i += 2) {
        const [flag, arg] = [flags[i], flags[i + 1] ?? ''];
        if (flag === '--namespace') cmd.namespace = arg;
        else if (flag === '--set') setValue(cmd.values, arg);
        else throw new Error(`${line}: flag ${flag} not rendered by this test`);
      }
      return cmd;
    });
}

describe('README: the helm commands it shows', () => {
  const commands = helmCommands();
  it('shows install and upgrade commands', () => {
    assert.ok(
      commands.some((c) => c.verb === 'install') && commands.some((c) => c.verb === 'upgrade'),
    );
  });
  let installed: K8sObject[] = [];
  for (const cmd of commands) {
    it(cmd.line, () => {
      assert.doesNotMatch(cmd.line, /--create-namespace/, 'the chart creates the namespace itself');
      const objects = releaseObjects(
        renderChart({
          releaseName: cmd.release,
          namespace: cmd.namespace,
          values: [cmd.values],
          ...(cmd.verb === 'upgrade' ? { upgradeFrom: installed } : {}),
        }),
      );
      for (const o of objects) if (o.kind !== 'SecurityContextConstraints') validateObject(o); // no SCC schema here
      assert.equal(find(objects, 'Namespace', cmd.namespace).metadata.name, cmd.namespace);
      if (cmd.verb === 'upgrade') {
        // An upgrade after an install: the webhook configuration (and its caBundle) must not change.
        assert.deepEqual(
          find(objects, 'MutatingWebhookConfiguration', 'lxcfs-webhook'),
          find(installed, 'MutatingWebhookConfiguration', 'lxcfs-webhook'),
        );
      }
      installed = objects;
    });
  }
});
