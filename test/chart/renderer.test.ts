// The renderer stands in for Helm, so its own behaviour is tested where it could differ from Helm's:
// value coalescing, Helm's own functions, the built-in objects, and refusing what it does not implement.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RenderError, renderRaw, type RenderOptions } from './render.js';

const work = mkdtempSync(join(tmpdir(), 'chart-renderer-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
let charts = 0;

/** A throwaway chart with these templates and values.yaml; returns its directory. */
function chart(templates: Record<string, string>, values = ''): string {
  const dir = join(work, `c${charts++}`);
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(
    join(dir, 'Chart.yaml'),
    'apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: "4.5"\n',
  );
  writeFileSync(join(dir, 'values.yaml'), values);
  for (const [name, text] of Object.entries(templates))
    writeFileSync(join(dir, 'templates', name), text);
  return dir;
}

/** Renders a one-template chart of just `expr`, returning what it printed. */
function show(expr: string, values = '', opts: RenderOptions = {}): string {
  const out = renderRaw({ ...opts, chart: chart({ 'x.yaml': expr }, values) });
  assert.ok(out.startsWith('---\n# Source: demo/templates/x.yaml\n'), out);
  return out.split('\n').slice(2).join('\n').trim();
}

const refusal = (fn: () => unknown) => assert.throws(fn, RenderError);

describe('chart renderer: values as Helm coalesces them', () => {
  const defaults = 'a:\n  b: 1\n  c: [1, 2]\n  d: keep\n';
  it('maps merge deeply, lists replace, later -f files win', () => {
    const out = show('{{ toJson .Values.a }}', defaults, {
      values: [{ a: { b: 2, c: [9] } }, { a: { b: 3 } }],
    });
    assert.deepEqual(JSON.parse(out), { b: 3, c: [9], d: 'keep' });
  });
  it('a null in a -f file deletes the default', () => {
    assert.deepEqual(
      JSON.parse(show('{{ toJson .Values.a }}', defaults, { values: [{ a: { d: null } }] })),
      { b: 1, c: [1, 2] },
    );
  });
  it('a null for a key with no default stays a null, as in Helm', () => {
    assert.equal(
      show('{{ hasKey .Values.a "new" }} {{ hasKey .Values.a "d" }}', defaults, {
        values: [{ a: { new: null, d: null } }],
      }),
      'true false',
    );
  });
  it('numbers are float64 as in Helm: large ones print in e-notation unless int64 is applied', () => {
    assert.equal(
      show('{{ .Values.num }} {{ int64 .Values.num }}', 'num: 12345678\n'),
      '1.2345678e+07 12345678',
    );
  });
});

describe('chart renderer: Chart.yaml kubeVersion', () => {
  it('refuses a cluster older than the constraint, as helm does', () => {
    const dir = chart({ 'x.yaml': 'a: 1\n' });
    writeFileSync(
      join(dir, 'Chart.yaml'),
      'apiVersion: v2\nname: demo\nversion: 1.2.3\nkubeVersion: ">=1.25.0-0"\n',
    );
    assert.throws(
      () => renderRaw({ chart: dir, kubeVersion: 'v1.24.9' }),
      /chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.9/,
    );
    assert.doesNotThrow(() => renderRaw({ chart: dir, kubeVersion: 'v1.28.3-gke.100' }));
  });
});

describe('chart renderer: built-in objects', () => {
  it('.Release, .Chart and .Template', () => {
    const out = show(
      '{{ .Release.Name }} {{ .Release.Namespace }} {{ .Release.IsInstall }} {{ .Release.Service }} {{ .Chart.Name }} {{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Template.Name }}',
      '',
      { releaseName: 'r', namespace: 'n' },
    );
    assert.equal(out, 'r n true Helm demo 1.2.3 4.5 demo/templates/x.yaml');
    assert.equal(
      show('{{ .Release.IsUpgrade }} {{ .Release.Revision }}', '', { upgradeFrom: [] }),
      'true 2',
    );
  });
  it('a missing value prints as nothing (Helm replaces "<no value>")', () =>
    assert.equal(show('[{{ .Values.nope }}]'), '[]'));
  it('refuses .Files, .Capabilities and .Subcharts rather than rendering them empty', () => {
    for (const expr of [
      '{{ .Files.Get "x" }}',
      '{{ .Capabilities.KubeVersion }}',
      '{{ $.Subcharts }}',
    ]) {
      assert.throws(() => show(expr), /is not implemented by this renderer/, expr);
    }
  });
});

describe('chart renderer: functions', () => {
  it('include renders a named template from a partial, which itself is not output', () => {
    const dir = chart({
      '_h.tpl': '{{ define "h" }}hello {{ . }}{{ end }}',
      'x.yaml': 'v: {{ include "h" "you" | upper }}\n',
    });
    assert.equal(renderRaw({ chart: dir }), '---\n# Source: demo/templates/x.yaml\nv: HELLO YOU\n');
  });
  it('tpl renders a value as a template', () =>
    assert.equal(show('{{ tpl .Values.t . }}', 't: "{{ .Release.Name }}-x"\n'), 'lxcfs-webhook-x'));
  it('required fails with its message on nil and empty string', () => {
    assert.throws(() => show('{{ required "give x" .Values.x }}'), /give x/);
    assert.throws(() => show('{{ required "give x" .Values.x }}', 'x: ""\n'), /give x/);
    assert.equal(show('{{ required "give x" .Values.x }}', 'x: z\n'), 'z');
  });
  it('values are YAML 1.1, as sigs.k8s.io/yaml reads them for Helm: an unquoted y is true, n as a key is "false"', () => {
    assert.equal(show('{{ .Values.x }} {{ index .Values "false" }}', 'x: y\nn: 1\n'), 'true 1');
  });
  it('toYaml, fromYaml and toJson', () => {
    assert.equal(show('{{ toYaml .Values.m }}', 'm: {b: 1, a: [x]}\n'), 'a:\n- x\nb: 1');
    assert.equal(show('{{ (fromYaml "a: 1").a }}'), '1');
    assert.match(show('{{ (fromYaml "a: [").Error }}'), /yaml/);
    assert.equal(show('{{ toJson .Values.m }}', 'm: {b: 1}\n'), '{"b":1}');
  });
  it('lookup: an empty map when absent, the object when the cluster has it, a list without a name', () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's', namespace: 'lxcfs' },
      data: { k: 'dg==' },
    };
    assert.equal(show('{{ len (lookup "v1" "Secret" "lxcfs" "s") }}'), '0');
    assert.equal(
      show('{{ (lookup "v1" "Secret" "lxcfs" "s").data.k }}', '', { upgradeFrom: [secret] }),
      'dg==',
    );
    assert.equal(
      show('{{ len (lookup "v1" "Secret" "other" "s") }}', '', { upgradeFrom: [secret] }),
      '0',
    );
    assert.equal(
      show('{{ len (lookup "v1" "Secret" "" "").items }}', '', { upgradeFrom: [secret] }),
      '1',
    );
  });
  it('sprig is there, minus env and expandenv as in Helm, and an unknown function is a parse error', () => {
    assert.equal(show('{{ list 1 2 | join "-" }}'), '1-2');
    for (const fn of ['env "HOME"', 'expandenv "$HOME"', 'fromJson "{}"', 'toToml .'])
      refusal(() => show(`{{ ${fn} }}`));
  });
  it('empty documents are dropped and every document names its template', () => {
    const out = renderRaw({
      chart: chart({ 'x.yaml': '---\n   \n---\n\n---\na: 1\n---\nb: 2\n---\nc: 3' }),
    });
    assert.equal(out.split('# Source: demo/templates/x.yaml').length - 1, 3);
  });
});
