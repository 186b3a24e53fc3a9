// applyPatch against an independent strict RFC 6902 implementation (fast-json-patch on the plain
// object), plus what only YAML has: comments, layout, aliases and merge keys.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDocument, stringify } from 'yaml';
import { LxcfsWebhookError } from '../../src/errors.js';
import { mutatePod } from '../../src/inject/mutate.js';
import type { JsonPatchOperation } from '../../src/inject/patch.js';
import type { Pod } from '../../src/inject/pod.js';
import { defaultSettings } from '../../src/inject/settings.js';
import { applyPatch } from '../../src/manifest/yaml-patch.js';
import { fixturePath, readJsonFixture } from '../helpers/paths.js';
import { applyStrict } from '../helpers/pod-check.js';

const parse = (text: string) => parseDocument(text, { version: '1.1' });

function assertPatchError(fn: () => unknown, message: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) =>
      err instanceof LxcfsWebhookError && err.code === 'E_MANIFEST' && message.test(err.message),
  );
}

describe('applyPatch on a YAML document', () => {
  const pods = [
    ...readdirSync(fixturePath('pods'))
      .filter((name) => name.endsWith('.json'))
      .map((name) => ['pods', name]),
    ['peers', 'kubeservice-unittest-pod-1.json'],
    ['peers', 'kubeservice-unittest-pod-2.json'],
  ];
  for (const [dir, name] of pods) {
    it(`gives the same object as a strict JSON patch for ${dir}/${name}`, () => {
      const pod = readJsonFixture<Pod>(dir as string, name as string);
      const { patch } = mutatePod({ pod, settings: defaultSettings });
      assert.ok(patch.length > 0);
      const doc = parse(stringify(pod));
      applyPatch(doc, [], patch);
      assert.deepEqual(doc.toJS(), applyStrict(pod, patch));
      assert.deepEqual(
        parse(doc.toString()).toJS(),
        doc.toJS(),
        'the rendered YAML reads back the same',
      );
    });
  }

  it("applies paths under a base path, e.g. a Deployment's pod template", () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'web', image: 'nginx' }] },
        },
      },
    };
    const { patch } = mutatePod({ pod: deployment.spec.template, settings: defaultSettings });
    const doc = parse(stringify(deployment));
    applyPatch(doc, ['spec', 'template'], patch);
    const prefixed = patch.map((op) => ({ ...op, path: `/spec/template${op.path}` }));
    assert.deepEqual(doc.toJS(), applyStrict(deployment, prefixed));
  });

  it('keeps comments and the quoting of untouched values', () => {
    const doc = parse(
      [
        '# pod header',
        'metadata:',
        '  annotations:',
        '    note: "quoted" # why',
        'spec:',
        '  containers:',
        '  # the app',
        '  - name: app',
        "    image: 'app:1'",
        '',
      ].join('\n'),
    );
    applyPatch(
      doc,
      [],
      [
        { op: 'add', path: '/metadata/annotations/a.io~1status', value: 'done' },
        {
          op: 'add',
          path: '/spec/containers/0/volumeMounts',
          value: [{ name: 'v', mountPath: '/proc/meminfo', readOnly: true }],
        },
      ],
    );
    const text = doc.toString({ indentSeq: false });
    for (const kept of [
      '# pod header',
      'note: "quoted" # why',
      '# the app',
      "image: 'app:1'",
      'a.io/status: done',
    ]) {
      assert.ok(text.includes(kept), `${kept} in\n${text}`);
    }
  });

  it('follows RFC 6902 for add and replace in lists and mappings', () => {
    const doc = parse('list: [a, c]\nmap: {k: old}\n');
    const ops: JsonPatchOperation[] = [
      { op: 'add', path: '/list/1', value: 'b' },
      { op: 'add', path: '/list/-', value: 'd' },
      { op: 'replace', path: '/list/0', value: 'A' },
      { op: 'add', path: '/map/k', value: 'added over' },
      { op: 'replace', path: '/map/k', value: 'replaced' },
      { op: 'add', path: '/map/~0tilde~1slash', value: 1 },
    ];
    applyPatch(doc, [], ops);
    assert.deepEqual(doc.toJS(), applyStrict({ list: ['a', 'c'], map: { k: 'old' } }, ops));
  });

  it('is strict like the API server: nothing missing is created on the way', () => {
    const doc = parse('spec:\n  containers:\n  - name: app\n');
    assertPatchError(
      () =>
        applyPatch(doc, [], [{ op: 'add', path: '/spec/containers/0/volumeMounts/-', value: {} }]),
      /^cannot add spec\.containers\[0\]\.volumeMounts\[-\]: spec\.containers\[0\]\.volumeMounts does not exist$/,
    );
    assertPatchError(
      () =>
        applyPatch(doc, [], [{ op: 'add', path: '/spec/containers/1/volumeMounts', value: [] }]),
      /spec\.containers\[1\] does not exist/,
    );
    assertPatchError(
      () => applyPatch(doc, [], [{ op: 'add', path: '/spec/containers/3', value: {} }]),
      /the list has 1 items/,
    );
    assertPatchError(
      () => applyPatch(doc, [], [{ op: 'replace', path: '/spec/volumes', value: [] }]),
      /it does not exist/,
    );
    assertPatchError(
      () => applyPatch(doc, [], [{ op: 'add', path: '/spec/containers/0/name/x', value: 1 }]),
      /spec\.containers\[0\]\.name is not a mapping or a list/,
    );
  });

  it('says when a field is missing because it comes from a merge key', () => {
    const doc = parse('base: &base\n  volumeMounts: []\ncontainer:\n  <<: *base\n  name: app\n');
    assertPatchError(
      () => applyPatch(doc, [], [{ op: 'add', path: '/container/volumeMounts/-', value: {} }]),
      /merge key/,
    );
  });

  it('refuses to write through an alias or into an anchor that aliases share', () => {
    const shared = [
      'spec:',
      '  containers:',
      '  - name: a',
      '    volumeMounts: &mounts',
      '    - {name: data, mountPath: /data}',
      '  - name: b',
      '    volumeMounts: *mounts',
      '',
    ].join('\n');
    const mount = { name: 'lxcfs-proc-meminfo', mountPath: '/proc/meminfo', readOnly: true };
    assertPatchError(
      () =>
        applyPatch(
          parse(shared),
          [],
          [{ op: 'add', path: '/spec/containers/1/volumeMounts/-', value: mount }],
        ),
      /spec\.containers\[1\]\.volumeMounts is a YAML alias \(\*mounts\).*write the value out in full/,
    );
    assertPatchError(
      () =>
        applyPatch(
          parse(shared),
          [],
          [{ op: 'add', path: '/spec/containers/0/volumeMounts/-', value: mount }],
        ),
      /spec\.containers\[0\]\.volumeMounts is a YAML anchor \(&mounts\) that aliases \(\*mounts\) reuse/,
    );
  });

  it('writes through nodes whose anchors nothing refers to, and leaves aliases elsewhere alone', () => {
    const doc = parse(
      'metadata:\n  labels: &l {app: web}\nselector: *l\nspec: &unused\n  containers: []\n',
    );
    applyPatch(doc, [], [{ op: 'add', path: '/spec/containers/-', value: { name: 'app' } }]);
    assert.deepEqual(doc.toJS(), {
      metadata: { labels: { app: 'web' } },
      selector: { app: 'web' },
      spec: { containers: [{ name: 'app' }] },
    });
    assert.match(doc.toString(), /selector: \*l/);
  });

  it('turns an empty flow list into a block list when it gets items', () => {
    const doc = parse('volumeMounts: []\nlabels: {a: b}\n');
    applyPatch(
      doc,
      [],
      [
        { op: 'add', path: '/volumeMounts/-', value: { name: 'v', mountPath: '/proc/stat' } },
        { op: 'add', path: '/labels/c', value: 'd' },
      ],
    );
    assert.equal(
      doc.toString({ indentSeq: false }),
      'volumeMounts:\n- name: v\n  mountPath: /proc/stat\nlabels: { a: b, c: d }\n',
    );
  });
});
