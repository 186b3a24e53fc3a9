// Reads manifest files (YAML or JSON; one document or several separated by `---`) into yaml Documents
// and writes them back. A document nobody changed is written back exactly as it was read; a changed
// one is rendered by the yaml library, which keeps comments, key order, quoting and anchors, in the
// layout detected from the original (indent width, indented or flush lists, spacing inside `{ }`).
import {
  isCollection,
  isNode,
  isSeq,
  LineCounter,
  parseAllDocuments,
  Scalar,
  visit,
  type Document,
  type ToStringOptions,
} from 'yaml';
import { LxcfsWebhookError } from '../errors.js';

/** Kubernetes reads YAML 1.1 (go-yaml): `defaultMode: 0644` is octal, `yes` and `on` are booleans. */
const YAML_VERSION = '1.1';

export interface ManifestDocument {
  doc: Document.Parsed;
  /** 1-based position in its file, and the line its content starts on: for messages. */
  number: number;
  line: number;
  /** The document's exact text in the file, with the comments and `---`/`...` markers around it. */
  source: string;
  layout: ToStringOptions;
  /** Set when the document is rendered rather than copied: it was changed, or written as JSON. */
  rewrite: boolean;
}

export interface ManifestFile {
  /** How messages name the file: its path, or `stdin`. */
  name: string;
  text: string;
  documents: ManifestDocument[];
}

/** Throws E_MANIFEST with the line and column of the first syntax error. */
export function parseManifestFile(name: string, text: string): ManifestFile {
  const lineCounter = new LineCounter();
  // prettyErrors would add a code excerpt to the message; one line with the position reads better.
  const docs = parseAllDocuments(text, { version: YAML_VERSION, lineCounter, prettyErrors: false });
  let start = 0;
  const documents = docs.map((doc, index): ManifestDocument => {
    const [error] = doc.errors;
    if (error) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      throw new LxcfsWebhookError(
        'E_MANIFEST',
        `${name}: YAML syntax error at line ${line}, column ${col}: ${error.message}`,
      );
    }
    // A document's text runs to the end of its `...` marker, or for the last one to the end of the file.
    const end = index === docs.length - 1 ? text.length : doc.range[2];
    const source = text.slice(start, end);
    start = end;
    const layout = detectLayout(doc, text);
    const isJson = isCollection(doc.contents) && doc.contents.flow === true;
    if (isJson) toBlockStyle(doc);
    return {
      doc,
      number: index + 1,
      line: lineCounter.linePos(doc.contents?.range[0] ?? doc.range[0]).line,
      source,
      layout,
      rewrite: isJson,
    };
  });
  return { name, text, documents };
}

function columnOf(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1);
}

/** The layout most of the document uses; the yaml library renders a whole document in one layout. */
function detectLayout(doc: Document.Parsed, text: string): ToStringOptions {
  const indents = new Tally<number>();
  const indentSeq = new Tally<boolean>();
  const flowCollectionPadding = new Tally<boolean>();
  visit(doc, {
    Pair: (_, { key, value }) => {
      if (!isNode(key) || !isCollection(value) || value.flow || !key.range || !value.range) return;
      // Only a block collection starting on a later line than its key shows the indentation.
      if (!text.slice(key.range[1], value.range[0]).includes('\n')) return;
      const step = columnOf(text, value.range[0]) - columnOf(text, key.range[0]);
      if (isSeq(value)) indentSeq.add(step > 0);
      else if (step > 0) indents.add(step);
    },
    Collection: (_, node) => {
      if (node.flow && node.items.length > 0 && node.range)
        flowCollectionPadding.add(text[node.range[0] + 1] === ' ');
    },
  });
  // Defaults follow kubectl's own output. lineWidth 0: long strings are never folded onto new lines.
  return {
    indent: indents.mostCommon() ?? 2,
    indentSeq: indentSeq.mostCommon() ?? false,
    flowCollectionPadding: flowCollectionPadding.mostCommon() ?? false,
    lineWidth: 0,
  };
}

/** Counts values; the most common one wins, the first seen on a tie. */
class Tally<T> {
  private readonly counts = new Map<T, number>();
  add(value: T): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + 1);
  }
  mostCommon(): T | undefined {
    let best: T | undefined;
    let bestCount = 0;
    for (const [value, count] of this.counts) {
      if (count > bestCount) [best, bestCount] = [value, count];
    }
    return best;
  }
}

/** JSON is written out as YAML: block collections, strings unquoted where YAML allows. */
function toBlockStyle(doc: Document): void {
  visit(doc, {
    Collection: (_, node) => {
      node.flow = false;
    },
    Scalar: (_, node) => {
      if (node.type === Scalar.QUOTE_DOUBLE) node.type = undefined;
    },
  });
}

function renderDocument(document: ManifestDocument): string {
  return document.rewrite ? document.doc.toString(document.layout) : document.source;
}

/** All documents of all files as one YAML stream, in order. */
export function renderYaml(files: ManifestFile[]): string {
  let out = '';
  for (const file of files) {
    const text =
      file.documents.length === 0 ? file.text : file.documents.map(renderDocument).join('');
    const first = file.documents[0];
    if (out !== '' && text !== '') {
      if (!out.endsWith('\n')) out += '\n';
      // The next file's first document needs a `---` to start, unless it has its own.
      if (first !== undefined && first.doc.directives?.docStart !== true) out += '---\n';
    }
    out += text;
  }
  return out === '' || out.endsWith('\n') ? out : `${out}\n`;
}

/** One object as it is, several as a `v1 List` (what `kubectl apply -f` takes as one JSON file). */
export function renderJson(files: ManifestFile[]): string {
  const objects = files.flatMap((file) =>
    file.documents.map((d) => d.doc.toJS() as unknown).filter((o) => o != null),
  );
  const output =
    objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects };
  return `${JSON.stringify(output, null, 2)}\n`;
}
