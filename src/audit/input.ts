// The audit's input: what `kubectl get namespaces,pods[,replicasets] -A -o json` prints, one or several
// documents. Anything it cannot use stops the audit with a message that names the file, the item and
// the field, and says what to give instead: a half-read cluster would report a clean bill of health
// for pods it never saw.
import { LxcfsWebhookError } from '../errors.js';
import { isObject, stringMap, type Pod } from '../inject/pod.js';
import { describeValue } from '../manifest/path.js';
import { controllerOf, replicaSetKey, type OwnerRef } from './owners.js';

export const INPUT_HINT = 'kubectl get namespaces,pods,replicasets -A -o json';

export interface AuditNamespace {
  name: string;
  labels: Record<string, string>;
}

export interface AuditInput {
  namespaces: Map<string, AuditNamespace>;
  pods: Array<{ namespace: string; pod: Pod }>;
  /** ReplicaSets by `namespace/name`, with their controlling owner (a Deployment) if any. */
  replicaSets: Map<string, OwnerRef | undefined>;
}

const KINDS: Record<string, string> = { Namespace: 'v1', Pod: 'v1', ReplicaSet: 'apps/v1' };
/** Typed lists (`kubectl get --raw`, client libraries) whose items carry no kind of their own. */
const TYPED_LISTS: Record<string, string> = {
  NamespaceList: 'Namespace',
  PodList: 'Pod',
  ReplicaSetList: 'ReplicaSet',
};

const inputError = (message: string) => new LxcfsWebhookError('E_MANIFEST', message);

export function emptyInput(): AuditInput {
  return { namespaces: new Map(), pods: [], replicaSets: new Map() };
}

/** Adds one document (the text of one file or of stdin) to `input`. */
export function addDocument(input: AuditInput, source: string, text: string): void {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw inputError(
      `${source}: not JSON (${(err as Error).message}); give what \`${INPUT_HINT}\` prints`,
    );
  }
  if (!isObject(document))
    throw inputError(
      `${source}: is ${describeValue(document)}, not a Kubernetes object; give what \`${INPUT_HINT}\` prints`,
    );
  const kind = document.kind;
  if (kind === 'List' || (typeof kind === 'string' && kind in TYPED_LISTS)) {
    const items = document.items;
    if (!Array.isArray(items))
      throw inputError(
        `${source}: the ${kind} has ${items === undefined ? 'no' : describeValue(items)} items; expected a list of objects`,
      );
    items.forEach((item: unknown, index) =>
      addObject(
        input,
        `${source}: item ${index + 1} of the list (items[${index}])`,
        item,
        TYPED_LISTS[kind as string],
      ),
    );
    return;
  }
  if (typeof kind === 'string' && kind in KINDS) {
    addObject(input, source, document, undefined);
    return;
  }
  throw inputError(
    `${source}: has kind ${JSON.stringify(kind ?? null)}, not a list; give what \`${INPUT_HINT}\` prints (a List), or a Namespace, Pod or ReplicaSet`,
  );
}

function addObject(
  input: AuditInput,
  where: string,
  item: unknown,
  listKind: string | undefined,
): void {
  if (!isObject(item))
    throw inputError(`${where} is ${describeValue(item)}, not a Kubernetes object`);
  const kind = typeof item.kind === 'string' ? item.kind : listKind;
  if (kind === undefined || !(kind in KINDS)) {
    throw inputError(
      `${where} has kind ${JSON.stringify(kind ?? null)}; expected Namespace, Pod or ReplicaSet`,
    );
  }
  const metadata = isObject(item.metadata) ? item.metadata : {};
  const name = metadata.name;
  if (typeof name !== 'string' || name === '')
    throw inputError(`${where} (${kind}) has no metadata.name`);
  if (kind === 'Namespace') {
    input.namespaces.set(name, { name, labels: stringMap(metadata.labels) });
    return;
  }
  const namespace = metadata.namespace;
  if (typeof namespace !== 'string' || namespace === '') {
    throw inputError(
      `${where} (${kind} ${name}) has no metadata.namespace; list objects as the API server returns them (${INPUT_HINT})`,
    );
  }
  if (kind === 'Pod') input.pods.push({ namespace, pod: item as Pod });
  else input.replicaSets.set(replicaSetKey(namespace, name), controllerOf(item));
}

/** Checks that every pod's namespace was given: without its labels, whether the webhook serves the pod is unknown. */
export function checkComplete(input: AuditInput): void {
  if (input.namespaces.size === 0) {
    throw inputError(
      `no namespaces given: the webhook selects pods by their namespace's labels; give what \`${INPUT_HINT}\` prints`,
    );
  }
  const unknown = [
    ...new Set(input.pods.map((p) => p.namespace).filter((ns) => !input.namespaces.has(ns))),
  ];
  if (unknown.length > 0) {
    const shown =
      unknown.slice(0, 5).join(', ') +
      (unknown.length > 5 ? `, and ${unknown.length - 5} more` : '');
    throw inputError(
      `pods in namespaces the input does not list: ${shown}; list namespaces and pods together (${INPUT_HINT})`,
    );
  }
}
