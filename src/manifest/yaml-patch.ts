// Applies RFC 6902 `add` and `replace` operations (the only ones mutatePod emits) to a parsed YAML
// document in place, so comments, key order, quoting and anchors elsewhere survive. Strict like the
// API server: a missing parent is an error, never created on the way.
//
// A YAML alias shares one node between several places. Writing through an alias, or into a node an
// alias points to, would change every place at once (two containers sharing one `volumeMounts` list
// would both get each other's mounts), so that is refused with a message saying how to fix the file.
import {
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  visit,
  type Document,
  type Node,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { LxcfsWebhookError } from '../errors.js';
import type { JsonPatchOperation } from '../inject/patch.js';
import { ARRAY_INDEX, describePath, pointerTokens, type PathTokens } from './path.js';

/** Applies `ops`, whose paths are relative to `base` (e.g. a Deployment's `spec.template`). */
export function applyPatch(
  doc: Document,
  base: PathTokens,
  ops: readonly JsonPatchOperation[],
): void {
  if (ops.length === 0) return;
  const sharedAnchors = referencedAnchors(doc);
  for (const op of ops) {
    const step: Step = { doc, op, path: [...base, ...pointerTokens(op.path)], sharedAnchors };
    const key = step.path.at(-1);
    if (key === undefined) throw patchError(step, 'cannot replace the whole document');
    const parent = parentOf(step);
    const wasEmpty = parent.items.length === 0;
    if (isMap(parent)) setInMap(step, parent, key);
    else setInSeq(step, parent, key);
    // `volumeMounts: []` written in flow style reads better as a block list once it has items.
    if (wasEmpty) parent.flow = false;
  }
}

/** One operation being applied: the document, the operation, its full path and the anchors aliases reuse. */
interface Step {
  doc: Document;
  op: JsonPatchOperation;
  path: PathTokens;
  sharedAnchors: Set<string>;
}

function patchError({ op, path }: Step, problem: string): LxcfsWebhookError {
  return new LxcfsWebhookError('E_MANIFEST', `cannot ${op.op} ${describePath(path)}: ${problem}`);
}

/** Anchors (`&name`) some alias (`*name`) in the document refers to. */
function referencedAnchors(doc: Document): Set<string> {
  const anchors = new Set<string>();
  visit(doc, {
    Alias: (_, alias) => {
      anchors.add(alias.source);
    },
  });
  return anchors;
}

function assertNotShared(step: Step, node: unknown, at: PathTokens): void {
  if (isAlias(node)) {
    throw patchError(
      step,
      `${describePath(at)} is a YAML alias (*${node.source}), shared with the place that defines ` +
        `&${node.source}; write the value out in full there instead of the alias`,
    );
  }
  if (isNode(node) && node.anchor !== undefined && step.sharedAnchors.has(node.anchor)) {
    throw patchError(
      step,
      `${describePath(at)} is a YAML anchor (&${node.anchor}) that aliases (*${node.anchor}) reuse; ` +
        'write the value out in full where the aliases are',
    );
  }
}

function pairOf(map: YAMLMap, key: string) {
  // Keys compare as JSON sees them: under YAML 1.1 an `on:` key is the boolean true, i.e. "true".
  return map.items.find(
    (pair) => isPair(pair) && isScalar(pair.key) && String(pair.key.value) === key,
  );
}

/** The mapping or list that holds the last token of `path`, walked to without crossing an alias. */
function parentOf(step: Step): YAMLMap | YAMLSeq {
  const parentPath = step.path.slice(0, -1);
  let node: unknown = step.doc.contents;
  for (let depth = 0; ; depth++) {
    const at = parentPath.slice(0, depth);
    assertNotShared(step, node, at);
    if (depth === parentPath.length) {
      if (isMap(node) || isSeq(node)) return node;
      throw patchError(step, `${describePath(at)} is not a mapping or a list`);
    }
    const key = parentPath[depth] as string;
    if (isMap(node)) {
      const pair = pairOf(node, key);
      if (pair === undefined)
        throw patchError(step, `${describePath([...at, key])} does not exist${mergeHint(node)}`);
      node = pair.value;
    } else if (isSeq(node) && ARRAY_INDEX.test(key) && Number(key) < node.items.length) {
      node = node.items[Number(key)];
    } else {
      throw patchError(step, `${describePath([...at, key])} does not exist`);
    }
  }
}

/** Fields that come from a YAML merge key (`<<: *defaults`) are not in the mapping itself. */
function mergeHint(map: YAMLMap): string {
  const hasMergeKey = map.items.some((pair) => isScalar(pair.key) && pair.key.source === '<<');
  return !hasMergeKey
    ? ''
    : ' in the mapping itself (it may come from its `<<` merge key; write the field out)';
}

function setInMap(step: Step, map: YAMLMap, key: string): void {
  const { doc, op } = step;
  const pair = pairOf(map, key);
  if (pair === undefined) {
    if (op.op === 'replace') throw patchError(step, 'it does not exist');
    map.items.push(doc.createPair(key, op.value));
    return;
  }
  // RFC 6902: `add` on an existing member replaces its value, like `replace`.
  assertNotShared(step, pair.value, step.path);
  pair.value = doc.createNode(op.value);
}

function setInSeq(step: Step, seq: YAMLSeq, key: string): void {
  const { doc, op } = step;
  const index = key === '-' ? seq.items.length : ARRAY_INDEX.test(key) ? Number(key) : NaN;
  const last = op.op === 'add' ? seq.items.length : seq.items.length - 1;
  if (!(index <= last)) throw patchError(step, `the list has ${seq.items.length} items`);
  const value: Node = doc.createNode(op.value);
  if (op.op === 'add') {
    seq.items.splice(index, 0, value);
  } else {
    assertNotShared(step, seq.items[index], step.path);
    seq.items[index] = value;
  }
}
