// Reading manifest files and writing them back: untouched documents byte for byte, changed ones in the
// layout of the original, JSON as YAML, and syntax errors with their position.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LxcfsWebhookError } from '../../src/errors.js';
import {
  parseManifestFile,
  renderJson,
  renderYaml,
  type ManifestFile,
} from '../../src/manifest/yaml-documents.js';
import { applyPatch } from '../../src/manifest/yaml-patch.js';

/** Marks the first document changed by adding one annotation, as injecting would. */
function touchFirst(file: ManifestFile): ManifestFile {
  const [first] = file.documents;
  assert.ok(first);
  applyPatch(
    first.doc,
    [],
    [{ op: 'add', path: '/metadata/annotations', value: { touched: 'done' } }],
  );
  first.rewrite = true;
  return file;
}

describe('parseManifestFile and renderYaml', () => {
  const untouched: Record<string, string> = {
    'comments and odd spacing':
      '# header\n\napiVersion: v1   # trailing\nkind: ConfigMap\ndata: {a:   "1"}\n',
    'document markers': 'a: 1\n... # end\n# between\n---\nb: 2\n---\n---\nc: 3\n# stream end\n',
    'CRLF line ends': 'a: 1\r\n---\r\nb: 2\r\n',
    'byte order mark, no final newline': '\uFEFFkind: ConfigMap\n---\nkind: Secret',
    'only comments': '# nothing to apply yet\n',
    'YAML 1.1 values': 'mode: 0644\nflag: yes\nkey: on\n',
  };
  for (const [name, text] of Object.entries(untouched)) {
    it(`copies untouched documents byte for byte: ${name}`, () => {
      const rendered = renderYaml([parseManifestFile('test.yaml', text)]);
      assert.equal(rendered, text.endsWith('\n') ? text : `${text}\n`);
    });
  }

  it('renders a changed document with its comments, next to untouched ones copied as they were', () => {
    const text = '# first\nmetadata:\n  name: a   # spaced\n---\n# second\nkind:    ConfigMap\n';
    const rendered = renderYaml([touchFirst(parseManifestFile('test.yaml', text))]);
    assert.equal(
      rendered,
      '# first\nmetadata:\n  name: a # spaced\n  annotations:\n    touched: done\n---\n# second\nkind:    ConfigMap\n',
    );
  });

  it('keeps the layout of the original: indent width and flush or indented lists', () => {
    const flush = 'metadata:\n  name: a\nspec:\n  containers:\n  - name: x\n    args: ["a", "b"]\n';
    assert.equal(
      renderYaml([touchFirst(parseManifestFile('flush.yaml', flush))]),
      'metadata:\n  name: a\n  annotations:\n    touched: done\nspec:\n  containers:\n  - name: x\n    args: ["a", "b"]\n',
    );
    const indented =
      'metadata:\n    name: a\nspec:\n    containers:\n        - name: x\n          args: [ "a", "b" ]\n';
    assert.equal(
      renderYaml([touchFirst(parseManifestFile('indented.yaml', indented))]),
      'metadata:\n    name: a\n    annotations:\n        touched: done\nspec:\n    containers:\n        - name: x\n          args: [ "a", "b" ]\n',
    );
  });

  it('reads YAML as Kubernetes does (1.1) and keeps octal modes when rewriting', () => {
    const file = parseManifestFile('mode.yaml', 'metadata: {}\nspec:\n  defaultMode: 0644\n');
    assert.deepEqual(file.documents[0]?.doc.toJS(), { metadata: {}, spec: { defaultMode: 0o644 } });
    assert.match(renderYaml([touchFirst(file)]), /defaultMode: 0644/);
  });

  it('writes JSON documents as block YAML with the same content, quoting what YAML 1.1 would misread', () => {
    const json =
      '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"on": "yes", "n": "1", "list": "[a]"}}';
    const file = parseManifestFile('c.json', json);
    const rendered = renderYaml([file]);
    assert.equal(
      rendered,
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  "on": "yes"\n  "n": "1"\n  list: "[a]"\n',
    );
    assert.deepEqual(
      parseManifestFile('again.yaml', rendered).documents[0]?.doc.toJS(),
      JSON.parse(json),
    );
  });

  it('separates files with --- unless the next file starts with one', () => {
    const files = [
      parseManifestFile('a.yaml', 'a: 1'),
      parseManifestFile('b.yaml', 'b: 2\n'),
      parseManifestFile('c.yaml', '# c\n---\nc: 3'),
      parseManifestFile('comments.yaml', '# only a comment'),
      parseManifestFile('empty.yaml', ''),
      parseManifestFile('d.yaml', 'd: 4\n'),
    ];
    assert.equal(
      renderYaml(files),
      'a: 1\n---\nb: 2\n# c\n---\nc: 3\n# only a comment\n---\nd: 4\n',
    );
  });

  it('reports a syntax error with the file, line and column', () => {
    assert.throws(
      () => parseManifestFile('bad.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n'),
      (err: unknown) =>
        err instanceof LxcfsWebhookError &&
        err.code === 'E_MANIFEST' &&
        /^bad\.yaml: YAML syntax error at line \d+, column \d+: /.test(err.message),
    );
    assert.throws(
      () => parseManifestFile('dup.yaml', 'kind: Pod\nkind: Service\n'),
      /^LxcfsWebhookError: dup\.yaml: YAML syntax error at line 2, column 1: Map keys must be unique/,
    );
  });
});

describe('renderJson', () => {
  it('prints one object as it is and several as a v1 List, skipping empty documents', () => {
    assert.deepEqual(JSON.parse(renderJson([parseManifestFile('a.yaml', '---\nkind: A\n---\n')])), {
      kind: 'A',
    });
    const several = renderJson([
      parseManifestFile('a.yaml', 'kind: A\n'),
      parseManifestFile('b.yaml', 'kind: B\n'),
    ]);
    assert.deepEqual(JSON.parse(several), {
      apiVersion: 'v1',
      kind: 'List',
      items: [{ kind: 'A' }, { kind: 'B' }],
    });
  });
});
