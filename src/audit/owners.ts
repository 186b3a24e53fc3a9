// Who recreates a pod, and the one command that makes it do so: a pod only gets the lxcfs files when
// it is created again, and its owner decides how. Pure.
import { isObject, type Pod } from '../inject/pod.js';

export interface OwnerRef {
  kind: string;
  /** API group, '' for the core group. */
  group: string;
  name: string;
  uid?: string;
}

export interface Owner {
  namespace: string;
  /** The object to act on: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ..., or the Pod itself. */
  kind: string;
  group: string;
  name: string;
  /** Set when the Deployment behind a ReplicaSet could not be named. */
  note?: string;
}

/** ReplicaSets of the input by namespace and name, with their controlling owner if any. */
export type ReplicaSetIndex = ReadonlyMap<string, OwnerRef | undefined>;

export const replicaSetKey = (namespace: string, name: string) => `${namespace}/${name}`;

/** The controlling ownerReference (`controller: true`): the object that recreates the pod. */
export function controllerOf(object: { metadata?: Record<string, unknown> }): OwnerRef | undefined {
  const refs = object.metadata?.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  const ref: unknown = refs.find((r: unknown) => isObject(r) && r.controller === true);
  if (!isObject(ref) || typeof ref.kind !== 'string' || typeof ref.name !== 'string')
    return undefined;
  const apiVersion = typeof ref.apiVersion === 'string' ? ref.apiVersion : 'v1';
  return {
    kind: ref.kind,
    group: apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '',
    name: ref.name,
    uid: typeof ref.uid === 'string' ? ref.uid : undefined,
  };
}

/**
 * The owner to fix for `pod`: a ReplicaSet's Deployment when the input holds the ReplicaSet, the
 * controller otherwise, the pod itself when nothing controls it.
 */
export function ownerOf(pod: Pod, namespace: string, replicaSets: ReplicaSetIndex): Owner {
  const controller = controllerOf(pod);
  if (controller === undefined)
    return { namespace, kind: 'Pod', group: '', name: String(pod.metadata?.name) };
  if (controller.kind === 'ReplicaSet' && controller.group === 'apps') {
    const key = replicaSetKey(namespace, controller.name);
    if (!replicaSets.has(key)) {
      return {
        namespace,
        ...controller,
        note: 'its Deployment unknown: add replicasets to the input',
      };
    }
    const deployment = replicaSets.get(key);
    if (deployment !== undefined)
      return { namespace, kind: deployment.kind, group: deployment.group, name: deployment.name };
  }
  return { namespace, kind: controller.kind, group: controller.group, name: controller.name };
}

/** `deployment/web`, `job.batch/migrate`: the form kubectl takes, with the group where kubectl needs it. */
export function ownerName(owner: Owner): string {
  const type = owner.kind.toLowerCase();
  const rollout = ROLLOUT_KINDS.has(`${owner.kind}.${owner.group}`);
  return `${rollout || owner.group === '' ? type : `${type}.${owner.group}`}/${owner.name}`;
}

/** Kinds `kubectl rollout restart` handles: it replaces their pods gradually, honouring their update strategy. */
const ROLLOUT_KINDS = new Set(['Deployment.apps', 'StatefulSet.apps', 'DaemonSet.apps']);

export interface Fix {
  command: string;
  /** What the command does that the user may not expect, or what it cannot do. */
  note?: string;
}

/** The command that recreates `pods` (all of one owner) so that the webhook sees them again. */
export function fixFor(owner: Owner, pods: readonly string[]): Fix {
  const ns = `kubectl -n ${owner.namespace}`;
  if (ROLLOUT_KINDS.has(`${owner.kind}.${owner.group}`))
    return { command: `${ns} rollout restart ${ownerName(owner)}` };
  const deletePods = `${ns} delete pod ${pods.join(' ')}`;
  switch (`${owner.kind}.${owner.group}`) {
    case 'Pod.':
      return {
        command: deletePods,
        note: 'a bare pod is not recreated: create it again from its manifest',
      };
    case 'Job.batch':
      return {
        command: deletePods,
        note: 'the Job starts a new pod for each (this may count against its backoffLimit); or let it finish, its next run is injected',
      };
    case 'ReplicaSet.apps':
    case 'ReplicationController.':
      return { command: deletePods, note: `the ${owner.kind} recreates them` };
    default:
      return {
        command: deletePods,
        note: `its controller (${owner.kind}${owner.group === '' ? '' : `.${owner.group}`}) should recreate them`,
      };
  }
}
