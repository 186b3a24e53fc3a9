// A model of the Kubernetes API server's object store, as Helm and our hook Jobs see it: objects by
// group, kind, namespace and name; creating into a missing or terminating namespace fails as the API
// server does; deleting a namespace takes everything in it (at the end of the operation, as namespace
// finalization does); RBAC (Roles, ClusterRoles and their bindings, resourceNames included) decides
// what a service account may do; and an HTTPS front (serveApi) answers a pod's REST calls with the
// API server's paths, status codes and Status bodies. Nothing of a kubelet or controller is modelled
// except what a caller does explicitly (the Job runner in helm.ts).
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import fastJsonPatch from 'fast-json-patch';
import type { K8sObject } from '../deploy/render.js';

export type { K8sObject };

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason:
      | 'NotFound'
      | 'AlreadyExists'
      | 'Conflict'
      | 'Forbidden'
      | 'Invalid'
      | 'Unauthorized'
      | 'MethodNotAllowed'
      | 'UnsupportedMediaType',
    message: string,
  ) {
    super(message);
  }
}

/** kind → group and plural resource, for every kind the chart, Helm or the model uses. */
const RESOURCES: Record<string, { group: string; resource: string; clusterScoped?: boolean }> = {
  Namespace: { group: '', resource: 'namespaces', clusterScoped: true },
  Secret: { group: '', resource: 'secrets' },
  ConfigMap: { group: '', resource: 'configmaps' },
  ServiceAccount: { group: '', resource: 'serviceaccounts' },
  Service: { group: '', resource: 'services' },
  Pod: { group: '', resource: 'pods' },
  ResourceQuota: { group: '', resource: 'resourcequotas' },
  Deployment: { group: 'apps', resource: 'deployments' },
  DaemonSet: { group: 'apps', resource: 'daemonsets' },
  Job: { group: 'batch', resource: 'jobs' },
  CronJob: { group: 'batch', resource: 'cronjobs' },
  PodDisruptionBudget: { group: 'policy', resource: 'poddisruptionbudgets' },
  NetworkPolicy: { group: 'networking.k8s.io', resource: 'networkpolicies' },
  Role: { group: 'rbac.authorization.k8s.io', resource: 'roles' },
  RoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'rolebindings' },
  ClusterRole: {
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterroles',
    clusterScoped: true,
  },
  ClusterRoleBinding: {
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterrolebindings',
    clusterScoped: true,
  },
  MutatingWebhookConfiguration: {
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingwebhookconfigurations',
    clusterScoped: true,
  },
  ValidatingWebhookConfiguration: {
    group: 'admissionregistration.k8s.io',
    resource: 'validatingwebhookconfigurations',
    clusterScoped: true,
  },
  MutatingAdmissionPolicy: {
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingadmissionpolicies',
    clusterScoped: true,
  },
  MutatingAdmissionPolicyBinding: {
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingadmissionpolicybindings',
    clusterScoped: true,
  },
  Certificate: { group: 'cert-manager.io', resource: 'certificates' },
  Issuer: { group: 'cert-manager.io', resource: 'issuers' },
  ServiceMonitor: { group: 'monitoring.coreos.com', resource: 'servicemonitors' },
  SecurityContextConstraints: {
    group: 'security.openshift.io',
    resource: 'securitycontextconstraints',
    clusterScoped: true,
  },
};

export function resourceOf(kind: string): {
  group: string;
  resource: string;
  clusterScoped: boolean;
} {
  const r = RESOURCES[kind];
  if (!r) throw new Error(`the cluster model does not know kind ${kind}: add it to RESOURCES`);
  return { ...r, clusterScoped: r.clusterScoped ?? false };
}

export const groupOf = (apiVersion: string) =>
  apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';

/** How the API server names a resource in its messages: `secrets`, `mutatingwebhookconfigurations.admissionregistration.k8s.io`. */
function qualified(kind: string): string {
  const { group, resource } = resourceOf(kind);
  return group ? `${resource}.${group}` : resource;
}

export interface Ref {
  kind: string;
  namespace?: string;
  name: string;
}

export function refOf(o: K8sObject, defaultNamespace?: string): Ref {
  if (resourceOf(o.kind).clusterScoped) return { kind: o.kind, name: o.metadata.name };
  const namespace = o.metadata.namespace ?? defaultNamespace;
  if (namespace === undefined) throw new Error(`${o.kind} ${o.metadata.name} has no namespace`);
  return { kind: o.kind, name: o.metadata.name, namespace };
}

export const refKey = (r: Ref) =>
  `${resourceOf(r.kind).group}/${r.kind}/${r.namespace ?? ''}/${r.name}`;
export const describeRef = (r: Ref) => `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;

const clone = <T>(v: T): T => structuredClone(v);
const isMap = (v: unknown): v is Record<string, any> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Lists the API server merges element by element (strategic merge patch's patchMergeKey "name"). */
const MERGE_BY_NAME = new Set([
  'containers',
  'initContainers',
  'volumes',
  'volumeMounts',
  'env',
  'webhooks',
  'imagePullSecrets',
]);

/**
 * What an update leaves: Helm 3's three-way strategic merge (original manifest, new manifest, live) and
 * Helm 4's server-side apply agree on this much: fields the new manifest sets take its value, fields the
 * last manifest set and the new one drops are removed, and fields neither manifest set (a caBundle a
 * Job patched in, status) stay as they are live.
 */
export function threeWayMerge(
  original: unknown,
  target: unknown,
  live: unknown,
  key = '',
): unknown {
  if (isMap(target)) {
    const out: Record<string, unknown> = {};
    const o = isMap(original) ? original : {};
    const l = isMap(live) ? live : {};
    for (const [k, v] of Object.entries(target)) out[k] = threeWayMerge(o[k], v, l[k], k);
    for (const [k, v] of Object.entries(l)) if (!(k in target) && !(k in o)) out[k] = clone(v);
    return out;
  }
  if (
    Array.isArray(target) &&
    MERGE_BY_NAME.has(key) &&
    target.every((e) => isMap(e) && typeof e.name === 'string')
  ) {
    const byName = (list: unknown) =>
      new Map((Array.isArray(list) ? list : []).filter(isMap).map((e) => [e.name as string, e]));
    const o = byName(original);
    const l = byName(live);
    const out: unknown[] = target.map((e) => threeWayMerge(o.get(e.name), e, l.get(e.name)));
    for (const [name, e] of l)
      if (!target.some((t) => t.name === name) && !o.has(name)) out.push(clone(e));
    return out;
  }
  return clone(target);
}

/** One RBAC rule, as the API server's RBAC authorizer reads it. */
interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}

export interface RequestAttributes {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name: string;
}

export class Cluster {
  private readonly objects = new Map<string, K8sObject>();
  private readonly terminating = new Set<string>();
  private resourceVersion = 1;
  /** Tokens of service accounts, as the kubelet mounts them into pods. */
  private readonly tokens = new Map<string, { namespace: string; name: string }>();
  /** Every write, in order: what a test can assert about what happened (and in which order). */
  readonly events: string[] = [];

  list(kind?: string, namespace?: string): K8sObject[] {
    return [...this.objects.values()]
      .filter(
        (o) =>
          (kind === undefined || o.kind === kind) &&
          (namespace === undefined || o.metadata.namespace === namespace),
      )
      .map(clone);
  }

  tryGet(ref: Ref): K8sObject | undefined {
    const o = this.objects.get(refKey(ref));
    return o ? clone(o) : undefined;
  }

  get(ref: Ref): K8sObject {
    const o = this.tryGet(ref);
    if (!o) throw new ApiError(404, 'NotFound', `${qualified(ref.kind)} "${ref.name}" not found`);
    return o;
  }

  /** Errors the API server gives before any write into a namespace. */
  private checkNamespace(ref: Ref): void {
    if (ref.namespace === undefined) return;
    if (!this.objects.has(refKey({ kind: 'Namespace', name: ref.namespace }))) {
      throw new ApiError(404, 'NotFound', `namespaces "${ref.namespace}" not found`);
    }
    if (this.terminating.has(ref.namespace)) {
      throw new ApiError(
        403,
        'Forbidden',
        `${qualified(ref.kind)} "${ref.name}" is forbidden: unable to create new content in namespace ${ref.namespace} because it is being terminated`,
      );
    }
  }

  private store(o: K8sObject, event: string): K8sObject {
    const stored = clone(o);
    stored.metadata.resourceVersion = String(this.resourceVersion++);
    stored.metadata.uid ??= randomBytes(8).toString('hex');
    this.objects.set(refKey(refOf(stored)), stored);
    this.events.push(`${event} ${describeRef(refOf(stored))}`);
    return clone(stored);
  }

  create(o: K8sObject, defaultNamespace?: string): K8sObject {
    const obj = clone(o);
    const ref = refOf(obj, defaultNamespace);
    if (ref.namespace !== undefined) obj.metadata.namespace = ref.namespace;
    else delete obj.metadata.namespace;
    if (this.objects.has(refKey(ref)))
      throw new ApiError(
        409,
        'AlreadyExists',
        `${qualified(ref.kind)} "${ref.name}" already exists`,
      );
    if (ref.kind !== 'Namespace') this.checkNamespace(ref);
    const created = this.store(obj, 'create');
    // The service account controller gives every new namespace its `default` ServiceAccount.
    if (ref.kind === 'Namespace')
      this.store(
        {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'default', namespace: ref.name },
        },
        'create',
      );
    return created;
  }

  /** A full replacement (PUT); `resourceVersion`, when given, must be the live one. */
  update(o: K8sObject, defaultNamespace?: string): K8sObject {
    const ref = refOf(o, defaultNamespace);
    const live = this.get(ref);
    const rv = o.metadata.resourceVersion;
    if (rv !== undefined && rv !== live.metadata.resourceVersion) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualified(ref.kind)} "${ref.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const obj = clone(o);
    obj.metadata.uid = live.metadata.uid;
    if (ref.namespace !== undefined) obj.metadata.namespace = ref.namespace;
    return this.store(obj, 'update');
  }

  /** A deletion; a Namespace is marked terminating and goes, with its contents, at settle(). */
  delete(ref: Ref): void {
    if (!this.objects.has(refKey(ref)))
      throw new ApiError(404, 'NotFound', `${qualified(ref.kind)} "${ref.name}" not found`);
    if (ref.kind === 'Namespace') {
      this.terminating.add(ref.name);
      this.events.push(`delete ${describeRef(ref)} (terminating)`);
      return;
    }
    this.objects.delete(refKey(ref));
    this.events.push(`delete ${describeRef(ref)}`);
  }

  /** Namespace finalization: a terminating namespace and everything in it are gone. */
  settle(): void {
    for (const ns of this.terminating) {
      for (const [key, o] of this.objects)
        if (o.metadata.namespace === ns) this.objects.delete(key);
      this.objects.delete(refKey({ kind: 'Namespace', name: ns }));
      this.events.push(`finalized Namespace ${ns}`);
    }
    this.terminating.clear();
  }

  isTerminating(namespace: string): boolean {
    return this.terminating.has(namespace);
  }

  // ---- RBAC -----------------------------------------------------------------------------------------

  /** A token for a service account, as the kubelet mounts one into a pod that runs as it. */
  tokenFor(namespace: string, name: string): string {
    const token = randomBytes(16).toString('hex');
    this.tokens.set(token, { namespace, name });
    return token;
  }

  serviceAccountOf(token: string): { namespace: string; name: string } | undefined {
    return this.tokens.get(token);
  }

  /** The RBAC authorizer: is any rule bound to this service account matching the request? */
  authorize(sa: { namespace: string; name: string }, attrs: RequestAttributes): boolean {
    const boundToSa = (b: K8sObject) =>
      (b.subjects ?? []).some(
        (s: any) =>
          s.kind === 'ServiceAccount' && s.name === sa.name && s.namespace === sa.namespace,
      );
    const rulesOf = (roleRef: { kind: string; name: string }, namespace?: string): PolicyRule[] => {
      const role = this.tryGet(
        roleRef.kind === 'ClusterRole'
          ? { kind: 'ClusterRole', name: roleRef.name }
          : { kind: 'Role', namespace, name: roleRef.name },
      );
      return (role?.rules ?? []) as PolicyRule[];
    };
    const rules: PolicyRule[] = [
      ...this.list('ClusterRoleBinding')
        .filter(boundToSa)
        .flatMap((b) => rulesOf(b.roleRef)),
      ...(attrs.namespace === undefined
        ? []
        : this.list('RoleBinding', attrs.namespace)
            .filter(boundToSa)
            .flatMap((b) => rulesOf(b.roleRef, attrs.namespace))),
    ];
    const has = (list: string[] | undefined, value: string) =>
      (list ?? []).some((v) => v === '*' || v === value);
    return rules.some(
      (r) =>
        has(r.apiGroups, attrs.group) &&
        has(r.resources, attrs.resource) &&
        has(r.verbs, attrs.verb) &&
        // resourceNames restricts by name; a create has no name to match (the API server authorizes it before the object exists).
        (r.resourceNames === undefined ||
          r.resourceNames.length === 0 ||
          (attrs.name !== '' && r.resourceNames.includes(attrs.name))),
    );
  }
}

// ---- the REST front ----------------------------------------------------------------------------------

const KIND_OF_RESOURCE = new Map(
  Object.entries(RESOURCES).map(([kind, r]) => [`${r.group}/${r.resource}`, kind]),
);

/** /api/v1/namespaces/ns/secrets/name, /apis/group/version/resource/name, ... → request attributes. */
function parsePath(path: string): {
  kind: string;
  group: string;
  resource: string;
  namespace?: string;
  name: string;
} {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 3) [group, rest] = [parts[1]!, parts.slice(3)];
  else
    throw new ApiError(
      404,
      'NotFound',
      `the server could not find the requested resource (${path})`,
    );
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name = ''] = rest;
  const kind = KIND_OF_RESOURCE.get(`${group}/${resource}`);
  if (!resource || !kind || rest.length > 2)
    throw new ApiError(
      404,
      'NotFound',
      `the server could not find the requested resource (${path})`,
    );
  return { kind, group, resource, ...(namespace === undefined ? {} : { namespace }), name };
}

function status(err: ApiError): object {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: err.reason,
    code: err.code,
  };
}

/** JSON merge patch (RFC 7386), which is also what a strategic merge patch does to the maps we send. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return clone(patch);
  const out: Record<string, unknown> = isMap(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface ApiFront {
  url: string;
  host: string;
  port: number;
  /** PEM of the CA a pod finds in its service-account directory (ca.crt). */
  caPem: string;
  /** Every request, as `VERB path → code`. */
  log: string[];
  close(): Promise<void>;
}

/** Serves the cluster over HTTPS with the given certificate (the pod's ca.crt verifies it), bearer-token authentication and RBAC. */
export async function serveApi(
  cluster: Cluster,
  tls: { certPem: string; keyPem: string; caPem: string },
): Promise<ApiFront> {
  const log: string[] = [];
  const server: Server = createServer(
    { cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' },
    (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const reply = (code: number, payload: object) => {
          log.push(`${req.method} ${req.url} → ${code}`);
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(payload));
        };
        try {
          const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
          const sa = token ? cluster.serviceAccountOf(token) : undefined;
          if (!sa) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
          const target = parsePath(req.url ?? '/');
          const verb = {
            GET: target.name ? 'get' : 'list',
            POST: 'create',
            PUT: 'update',
            PATCH: 'patch',
            DELETE: 'delete',
          }[req.method ?? ''];
          if (!verb || (verb === 'create' && target.name))
            throw new ApiError(
              405,
              'MethodNotAllowed',
              `the server does not allow this method on the requested resource`,
            );
          if (
            !cluster.authorize(sa, {
              verb,
              group: target.group,
              resource: target.resource,
              ...(target.namespace === undefined ? {} : { namespace: target.namespace }),
              name: target.name,
            })
          ) {
            const where =
              target.namespace === undefined
                ? 'at the cluster scope'
                : `in the namespace "${target.namespace}"`;
            throw new ApiError(
              403,
              'Forbidden',
              `${target.resource}${target.group ? `.${target.group}` : ''}${target.name ? ` "${target.name}"` : ''} is forbidden: User "system:serviceaccount:${sa.namespace}:${sa.name}" cannot ${verb} resource "${target.resource}" in API group "${target.group}" ${where}`,
            );
          }
          const ref: Ref = {
            kind: target.kind,
            name: target.name,
            ...(target.namespace === undefined ? {} : { namespace: target.namespace }),
          };
          switch (verb) {
            case 'get':
              return reply(200, cluster.get(ref));
            case 'list':
              return reply(200, {
                kind: `${target.kind}List`,
                apiVersion: 'v1',
                items: cluster.list(target.kind, target.namespace),
              });
            case 'create': {
              const obj = JSON.parse(body) as K8sObject;
              if (
                obj.metadata?.namespace !== undefined &&
                obj.metadata.namespace !== target.namespace
              ) {
                throw new ApiError(
                  400 as number,
                  'Invalid',
                  'the namespace of the provided object does not match the namespace sent on the request',
                );
              }
              return reply(201, cluster.create(obj, target.namespace));
            }
            case 'update':
              return reply(200, cluster.update(JSON.parse(body) as K8sObject, target.namespace));
            case 'delete':
              cluster.delete(ref);
              return reply(200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
            default: {
              const live = cluster.get(ref);
              const type = (req.headers['content-type'] ?? '').split(';')[0];
              let patched: K8sObject;
              if (type === 'application/json-patch+json') {
                try {
                  patched = fastJsonPatch.applyPatch(
                    live,
                    JSON.parse(body),
                    true,
                    false,
                  ).newDocument;
                } catch (err) {
                  throw new ApiError(
                    422,
                    'Invalid',
                    `the server rejected our request due to an error in our request: ${(err as Error).message.split('\n')[0]}`,
                  );
                }
              } else if (
                type === 'application/merge-patch+json' ||
                type === 'application/strategic-merge-patch+json'
              ) {
                patched = mergePatch(live, JSON.parse(body)) as K8sObject;
              } else {
                throw new ApiError(
                  415,
                  'UnsupportedMediaType',
                  `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json`,
                );
              }
              // A patch that names a resourceVersion is checked against the live one (optimistic concurrency).
              const asked = (JSON.parse(body) as any)?.metadata?.resourceVersion;
              if (typeof asked === 'string' && asked !== live.metadata.resourceVersion) {
                throw new ApiError(
                  409,
                  'Conflict',
                  `Operation cannot be fulfilled on ${target.resource} "${target.name}": the object has been modified; please apply your changes to the latest version and try again`,
                );
              }
              patched.metadata.resourceVersion = live.metadata.resourceVersion;
              return reply(200, cluster.update(patched, target.namespace));
            }
          }
        } catch (err) {
          if (err instanceof ApiError) return reply(err.code, status(err));
          return reply(500, {
            kind: 'Status',
            status: 'Failure',
            message: (err as Error).message,
            code: 500,
          });
        }
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    caPem: tls.caPem,
    log,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
