// A model of Helm's install, upgrade, uninstall, template and test actions (helm/helm pkg/action and
// pkg/kube, v3.17-v3.21 and v4.0-v4.2), run against the cluster model on the chart rendered by
// test/chart/renderer. What it reproduces, each from Helm's source:
//  - install: the release name must be free; values (-f, --set, --set-string) merged as pkg/cli/values
//    does; the chart rendered with `lookup` reading the cluster (nothing in `--dry-run`/client mode);
//    hooks split from the manifest by their `helm.sh/hook` annotation; every rendered object that
//    already exists must carry Helm's ownership metadata (existingResourceConflict) unless
//    --take-ownership; --create-namespace creates a bare namespace; the release record (a Secret in the
//    release namespace) is written BEFORE any chart object; pre-install hooks, then the objects in
//    InstallOrder with Helm's ownership label and annotations (Helm 3 creates and fails on "already
//    exists"; Helm 4 applies server-side), then post-install hooks;
//  - upgrade: the values of the last deployed release with --reuse-values / --reset-then-reuse-values,
//    the ownership check for objects new to the release, pre-upgrade hooks, every rendered object
//    created or updated (three-way: fields neither manifest set stay), every object of the last
//    manifest no longer rendered deleted unless the LIVE object is annotated
//    `helm.sh/resource-policy: keep`, post-upgrade hooks;
//  - uninstall: pre-delete hooks (a failure stops it before anything is deleted), every object of the
//    release manifest deleted in UninstallOrder except those whose MANIFEST has the keep policy,
//    post-delete hooks, the release records purged;
//  - hooks: by weight then name (kind order first), `before-hook-creation` by default, Jobs and Pods
//    waited for (run by a JobRunner), every other kind ready at once, `hook-succeeded` deletions after
//    the whole event, `hook-failed` deletions on failure; hooks never get ownership metadata and are
//    not part of the release (uninstall does not delete them).
// Not modelled: --atomic rollback, --wait beyond "every hook Job finished" (workloads are taken as
// ready), rollback, subcharts, CRDs, post-renderers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { RenderError, renderChart } from '../chart/render.js';
import {
  ApiError,
  Cluster,
  describeRef,
  refKey,
  refOf,
  resourceOf,
  threeWayMerge,
  type K8sObject,
  type Ref,
} from './cluster.js';
import { mergeValues, StrvalsError } from './strvals.js';

export type HelmVersion = 3 | 4;
type Values = Record<string, unknown>;

export class HelmError extends Error {}

export interface Hook {
  object: K8sObject;
  events: string[];
  weight: number;
  deletePolicies: string[];
  outputLogPolicies: string[];
}

export type ReleaseStatus =
  | 'deployed'
  | 'failed'
  | 'superseded'
  | 'uninstalling'
  | 'uninstalled'
  | 'pending-install'
  | 'pending-upgrade';

export interface ReleaseRecord {
  name: string;
  namespace: string;
  version: number;
  status: ReleaseStatus;
  chart: string;
  /** The chart's own values.yaml, what --reuse-values coalesces the stored config with. */
  chartDefaults: Values;
  /** The user-supplied values of this revision (Helm's .Config). */
  config: Values;
  manifest: K8sObject[];
  hooks: Hook[];
}

/** Runs a hook Job or Pod to completion, as the cluster's controllers and a kubelet would. */
export interface JobRunner {
  run(object: K8sObject, helm: Helm): Promise<{ succeeded: boolean; reason: string; logs: string }>;
}

/** A runner that refuses: for tests whose charts render no Job or Pod hook. */
export const NO_JOBS: JobRunner = {
  run: async (o) => {
    throw new Error(`this test runs no hook workloads, but ${o.kind} ${o.metadata.name} is one`);
  },
};

export interface ValueFlags {
  /** -f files, in order. */
  values?: Values[];
  set?: string[];
  setString?: string[];
}

export interface InstallOptions extends ValueFlags {
  namespace: string;
  createNamespace?: boolean;
  takeOwnership?: boolean;
  dryRun?: 'client' | 'server';
  noHooks?: boolean;
}

export interface UpgradeOptions extends ValueFlags {
  namespace: string;
  install?: boolean;
  reuseValues?: boolean;
  resetValues?: boolean;
  resetThenReuseValues?: boolean;
  takeOwnership?: boolean;
  dryRun?: 'client' | 'server';
  noHooks?: boolean;
  createNamespace?: boolean;
}

export interface UninstallOptions {
  namespace: string;
  noHooks?: boolean;
  keepHistory?: boolean;
}

/** pkg/releaseutil/kind_sorter.go. */
const INSTALL_ORDER = [
  'PriorityClass',
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'SecretList',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleList',
  'ClusterRoleBinding',
  'ClusterRoleBindingList',
  'Role',
  'RoleList',
  'RoleBinding',
  'RoleBindingList',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
];
const UNINSTALL_ORDER = [
  'APIService',
  'Ingress',
  'IngressClass',
  'Service',
  'CronJob',
  'Job',
  'StatefulSet',
  'HorizontalPodAutoscaler',
  'Deployment',
  'ReplicaSet',
  'ReplicationController',
  'Pod',
  'DaemonSet',
  'RoleBindingList',
  'RoleBinding',
  'RoleList',
  'Role',
  'ClusterRoleBindingList',
  'ClusterRoleBinding',
  'ClusterRoleList',
  'ClusterRole',
  'CustomResourceDefinition',
  'PersistentVolumeClaim',
  'PersistentVolume',
  'StorageClass',
  'ConfigMap',
  'SecretList',
  'Secret',
  'ServiceAccount',
  'PodDisruptionBudget',
  'PodSecurityPolicy',
  'LimitRange',
  'ResourceQuota',
  'NetworkPolicy',
  'Namespace',
  'PriorityClass',
];

/** Known kinds in the given order, unknown kinds after them by kind name; stable otherwise. */
function sortByKind<T>(items: T[], kindOf: (t: T) => string, order: string[]): T[] {
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => {
      const [ka, kb] = [kindOf(a.item), kindOf(b.item)];
      return (
        rank(ka) - rank(kb) || (rank(ka) === order.length ? ka.localeCompare(kb) : 0) || a.i - b.i
      );
    })
    .map((x) => x.item);
}

const MANAGED_BY = 'app.kubernetes.io/managed-by';
const RELEASE_NAME = 'meta.helm.sh/release-name';
const RELEASE_NAMESPACE = 'meta.helm.sh/release-namespace';
const RESOURCE_POLICY = 'helm.sh/resource-policy';

const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/** chartutil.CoalesceValues for a chart without subcharts: user values over the chart's defaults; a user null removes a default. */
export function coalesceValues(user: Values, defaults: Values): Values {
  const v = clone(user);
  for (const [key, val] of Object.entries(defaults)) {
    if (!(key in v)) v[key] = clone(val);
    else if (v[key] === null) delete v[key];
    else if (isMap(v[key]) && isMap(val)) coalesceTables(v[key] as Values, clone(val));
  }
  return v;
}

/** chartutil.CoalesceTables: `dst` wins, `src` fills in; a null in dst removes a key src sets. */
export function coalesceTables(dst: Values, src: Values): Values {
  const srcNonNil = new Set(
    Object.entries(src)
      .filter(([, v]) => v !== null)
      .map(([k]) => k),
  );
  for (const [key, val] of Object.entries(dst)) if (val === null) src[key] = null;
  for (const [key, val] of Object.entries(src)) {
    if (key in dst && dst[key] === null && srcNonNil.has(key)) delete dst[key];
    else if (!(key in dst)) dst[key] = val;
    else if (isMap(val) && isMap(dst[key])) coalesceTables(dst[key] as Values, val);
  }
  return dst;
}

function checkOwnership(live: K8sObject, name: string, namespace: string): string | undefined {
  const errs: string[] = [];
  const need = (
    where: 'label' | 'annotation',
    map: Record<string, string> | undefined,
    key: string,
    value: string,
  ) => {
    const actual = map?.[key];
    if (actual === undefined)
      errs.push(`${where} validation error: missing key "${key}": must be set to "${value}"`);
    else if (actual !== value)
      errs.push(
        `${where} validation error: key "${key}" must equal "${value}": current value is "${actual}"`,
      );
  };
  need('label', live.metadata.labels, MANAGED_BY, 'Helm');
  need('annotation', live.metadata.annotations, RELEASE_NAME, name);
  need('annotation', live.metadata.annotations, RELEASE_NAMESPACE, namespace);
  return errs.length ? ['invalid ownership metadata', ...errs].join('; ') : undefined;
}

/** resourceString in pkg/action/validate.go. */
const resourceString = (r: Ref) => `${r.kind} "${r.name}" in namespace "${r.namespace ?? ''}"`;

function withOwnership(o: K8sObject, name: string, namespace: string): K8sObject {
  const out = clone(o);
  out.metadata.labels = { ...out.metadata.labels, [MANAGED_BY]: 'Helm' };
  out.metadata.annotations = {
    ...out.metadata.annotations,
    [RELEASE_NAME]: name,
    [RELEASE_NAMESPACE]: namespace,
  };
  return out;
}

export interface Rendered {
  manifest: K8sObject[];
  hooks: Hook[];
}

/** Splits a render into the release manifest (sorted in InstallOrder) and hooks (kind order; weight order when run). */
export function splitHooks(objects: K8sObject[], namespace: string): Rendered {
  const manifest: K8sObject[] = [];
  const hooks: Hook[] = [];
  for (const object of objects) {
    const a = object.metadata.annotations ?? {};
    const hook = a['helm.sh/hook'];
    if (hook === undefined) {
      manifest.push(object);
      continue;
    }
    const list = (v: string | undefined) =>
      (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    hooks.push({
      object,
      events: list(hook),
      weight: Number.parseInt(a['helm.sh/hook-weight'] ?? '0', 10) || 0,
      deletePolicies: list(a['helm.sh/hook-delete-policy']),
      outputLogPolicies: list(a['helm.sh/hook-output-log-policy']),
    });
  }
  // Objects without a namespace go to the release namespace (the kube client's default namespace).
  for (const o of [...manifest, ...hooks.map((h) => h.object)])
    if (!resourceOf(o.kind).clusterScoped) o.metadata.namespace ??= namespace;
  return {
    manifest: sortByKind(manifest, (o) => o.kind, INSTALL_ORDER),
    hooks: sortByKind(hooks, (h) => h.object.kind, INSTALL_ORDER),
  };
}

export class Helm {
  /** What the last action printed about hooks and kept objects, as Helm does. */
  readonly output: string[] = [];

  constructor(
    readonly cluster: Cluster,
    readonly version: HelmVersion,
    readonly runner: JobRunner = NO_JOBS,
  ) {}

  // ---- release storage (the Secret driver) ------------------------------------------------------------

  private recordName = (name: string, version: number) => `sh.helm.release.v1.${name}.v${version}`;

  history(name: string, namespace: string): ReleaseRecord[] {
    if (this.cluster.tryGet({ kind: 'Namespace', name: namespace }) === undefined) return [];
    return this.cluster
      .list('Secret', namespace)
      .filter((s) => s.metadata.labels?.owner === 'helm' && s.metadata.labels?.name === name)
      .map((s) => JSON.parse(Buffer.from(s.data.release, 'base64').toString()) as ReleaseRecord)
      .sort((a, b) => a.version - b.version);
  }

  private writeRecord(rel: ReleaseRecord, create: boolean): void {
    const secret: K8sObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'helm.sh/release.v1',
      metadata: {
        name: this.recordName(rel.name, rel.version),
        namespace: rel.namespace,
        labels: { owner: 'helm', name: rel.name, status: rel.status, version: String(rel.version) },
      },
      data: { release: Buffer.from(JSON.stringify(rel)).toString('base64') },
    };
    if (create) {
      try {
        this.cluster.create(secret);
      } catch (err) {
        throw new HelmError(`create: failed to create: ${(err as Error).message}`);
      }
    } else {
      // recordRelease: Helm logs a failed update and carries on.
      try {
        this.cluster.update(secret);
      } catch {
        /* the namespace (and the record) may be gone */
      }
    }
  }

  // ---- rendering ------------------------------------------------------------------------------------

  private render(
    {
      name,
      chart,
      namespace,
      config,
    }: { name: string; chart: string; namespace: string; config: Values },
    opts: { remote: boolean; isUpgrade: boolean; chartValues?: Values },
  ): Rendered {
    let objects: K8sObject[];
    try {
      objects = renderChart({
        chart,
        namespace,
        releaseName: name,
        values: [config],
        isUpgrade: opts.isUpgrade,
        ...(opts.remote ? { lookup: this.cluster.list() } : {}),
        ...(opts.chartValues ? { chartValues: opts.chartValues } : {}),
      }).map((r) => r.object);
    } catch (err) {
      if (err instanceof RenderError) throw new HelmError(err.message.replace(/^Error: /, ''));
      throw err;
    }
    return splitHooks(objects, namespace);
  }

  private userValues(flags: ValueFlags): Values {
    try {
      return mergeValues(flags.values ?? [], flags.set ?? [], flags.setString ?? []);
    } catch (err) {
      if (err instanceof StrvalsError) throw new HelmError(err.message);
      throw err;
    }
  }

  /** `helm template`: the manifests and hooks (test hooks unless --skip-tests; none with --no-hooks), with nothing read from a cluster. */
  template(
    name: string,
    chart: string,
    opts: ValueFlags & { namespace: string; skipTests?: boolean; noHooks?: boolean },
  ): K8sObject[] {
    const config = this.userValues(opts);
    let objects: K8sObject[];
    try {
      objects = renderChart({
        chart,
        namespace: opts.namespace,
        releaseName: name,
        values: [config],
      }).map((r) => r.object);
    } catch (err) {
      if (err instanceof RenderError) throw new HelmError(err.message.replace(/^Error: /, ''));
      throw err;
    }
    const hook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'];
    if (opts.noHooks) return objects.filter((o) => hook(o) === undefined);
    return opts.skipTests
      ? objects.filter((o) => !/\btest(-success)?\b/.test(hook(o) ?? ''))
      : objects;
  }

  // ---- objects ----------------------------------------------------------------------------------------

  /** kube.Client.Create: Helm 3 POSTs (an existing object is an error), Helm 4 applies server-side. */
  private createObjects(objects: K8sObject[]): void {
    for (const o of objects) {
      if (this.version === 4) this.apply(o, undefined);
      else this.cluster.create(o);
    }
  }

  /** Server-side apply (Helm 4) or Helm 3's three-way merge patch: the same result for what we check. */
  private apply(target: K8sObject, original: K8sObject | undefined): void {
    const live = this.cluster.tryGet(refOf(target));
    if (!live) {
      this.cluster.create(target);
      return;
    }
    const merged = threeWayMerge(original, target, live) as K8sObject;
    merged.metadata.resourceVersion = live.metadata.resourceVersion;
    this.cluster.update(merged);
  }

  /**
   * existingResourceConflict / requireAdoption: the rendered objects that exist already (as rendered:
   * Helm then updates them with the rendering as the "original"), refused unless owned by this release.
   */
  private adoptable(
    objects: K8sObject[],
    { name, namespace }: { name: string; namespace: string },
    { takeOwnership, action }: { takeOwnership: boolean; action: 'install' | 'update' },
  ): K8sObject[] {
    const existing: K8sObject[] = [];
    for (const o of objects) {
      const live = this.cluster.tryGet(refOf(o));
      if (!live) continue;
      const problem = takeOwnership ? undefined : checkOwnership(live, name, namespace);
      if (problem) {
        throw new HelmError(
          `Unable to continue with ${action}: ${resourceString(refOf(o))} exists and cannot be imported into the current release: ${problem}`,
        );
      }
      existing.push(o);
    }
    return existing;
  }

  // ---- hooks --------------------------------------------------------------------------------------------

  private async execHooks(rel: ReleaseRecord, event: string): Promise<void> {
    const executing = rel.hooks
      .map((h, i) => ({ h, i }))
      .filter(({ h }) => h.events.includes(event))
      .sort(
        (a, b) =>
          a.h.weight - b.h.weight ||
          a.h.object.metadata.name.localeCompare(b.h.object.metadata.name) ||
          a.i - b.i,
      )
      .map(({ h }) => h);
    const deleteBy = (h: Hook, policy: string) => {
      const policies = h.deletePolicies.length ? h.deletePolicies : ['before-hook-creation'];
      if (!policies.includes(policy)) return;
      try {
        this.cluster.delete(refOf(h.object));
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    };
    for (const [i, h] of executing.entries()) {
      deleteBy(h, 'before-hook-creation');
      try {
        if (this.version === 4) this.apply(h.object, undefined);
        else this.cluster.create(h.object);
      } catch (err) {
        throw new HelmError(
          `warning: Hook ${event} ${h.object.kind.toLowerCase()} ${h.object.metadata.name} failed: ${(err as Error).message}`,
        );
      }
      if (h.object.kind === 'Job' || h.object.kind === 'Pod') {
        const result = await this.runner.run(h.object, this);
        this.recordWorkloadStatus(h.object, result.succeeded);
        if (!result.succeeded) {
          if (h.outputLogPolicies.includes('hook-failed'))
            this.output.push(`Logs of ${h.object.kind} ${h.object.metadata.name}:\n${result.logs}`);
          deleteBy(h, 'hook-failed');
          for (const earlier of executing.slice(0, i)) deleteBy(earlier, 'hook-succeeded');
          throw new HelmError(
            `${h.object.kind.toLowerCase()} ${h.object.metadata.name} failed: ${result.reason}`,
          );
        }
      }
    }
    for (const h of [...executing].reverse()) {
      if (h.outputLogPolicies.includes('hook-succeeded'))
        this.output.push(`(logs of ${h.object.metadata.name})`);
      deleteBy(h, 'hook-succeeded');
    }
  }

  /** What the Job controller writes when its pod finished (what Helm's watch waits for). */
  private recordWorkloadStatus(o: K8sObject, succeeded: boolean): void {
    const live = this.cluster.tryGet(refOf(o));
    if (!live) return;
    if (o.kind === 'Job')
      live.status = {
        conditions: [
          {
            type: succeeded ? 'Complete' : 'Failed',
            status: 'True',
            ...(succeeded ? {} : { reason: 'BackoffLimitExceeded' }),
          },
        ],
      };
    else live.status = { phase: succeeded ? 'Succeeded' : 'Failed' };
    this.cluster.update(live);
  }

  // ---- actions --------------------------------------------------------------------------------------------

  async install(name: string, chart: string, opts: InstallOptions): Promise<ReleaseRecord> {
    try {
      return await this.doInstall(name, chart, opts);
    } catch (err) {
      throw this.asHelmError(err, 'INSTALLATION FAILED');
    } finally {
      this.cluster.settle();
    }
  }

  private asHelmError(err: unknown, prefix: string): HelmError {
    if (err instanceof HelmError || err instanceof ApiError)
      return new HelmError(`${prefix}: ${err.message}`);
    return err as HelmError;
  }

  private async doInstall(
    name: string,
    chart: string,
    opts: InstallOptions,
  ): Promise<ReleaseRecord> {
    const { namespace } = opts;
    const last = this.history(name, namespace).at(-1);
    if (last && last.status !== 'uninstalled')
      throw new HelmError('cannot re-use a name that is still in use');
    const config = this.userValues(opts);
    const remote = opts.dryRun !== 'client';
    const rendered = this.render({ name, chart, namespace, config }, { remote, isUpgrade: false });
    const rel: ReleaseRecord = {
      name,
      namespace,
      version: 1,
      status: 'pending-install',
      chart,
      chartDefaults: chartDefaults(chart),
      config,
      manifest: rendered.manifest,
      hooks: rendered.hooks,
    };
    const resources = rendered.manifest.map((o) => withOwnership(o, name, namespace));
    const toBeAdopted =
      opts.dryRun === 'client'
        ? []
        : this.adoptable(
            resources,
            { name, namespace },
            { takeOwnership: opts.takeOwnership ?? false, action: 'install' },
          );
    if (opts.dryRun) return rel;

    if (opts.createNamespace) {
      try {
        this.cluster.create({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: namespace, labels: { name: namespace } },
        });
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
    }
    this.writeRecord(rel, true);
    try {
      if (!opts.noHooks)
        await this.execHooks(rel, 'pre-install').catch((err: Error) => {
          throw new HelmError(`failed pre-install: ${err.message}`);
        });
      if (toBeAdopted.length === 0) {
        this.createObjects(resources);
      } else {
        this.updateObjects(toBeAdopted, resources);
      }
      if (!opts.noHooks)
        await this.execHooks(rel, 'post-install').catch((err: Error) => {
          throw new HelmError(`failed post-install: ${err.message}`);
        });
    } catch (err) {
      rel.status = 'failed';
      this.writeRecord(rel, false);
      throw err;
    }
    rel.status = 'deployed';
    this.writeRecord(rel, false);
    return rel;
  }

  /** kube.Client.Update: create or update every target, then delete what the current manifest had and the target drops. */
  private updateObjects(
    current: K8sObject[],
    target: K8sObject[],
  ): { deleted: Ref[]; kept: Ref[] } {
    const currentByKey = new Map(current.map((o) => [refKey(refOf(o)), o]));
    for (const o of target) {
      const ref = refOf(o);
      const live = this.cluster.tryGet(ref);
      if (!live) {
        this.cluster.create(o);
        continue;
      }
      const original = currentByKey.get(refKey(ref));
      if (!original) throw new HelmError(`no ${o.kind} with the name "${o.metadata.name}" found`);
      this.apply(o, original);
    }
    const targetKeys = new Set(target.map((o) => refKey(refOf(o))));
    const deleted: Ref[] = [];
    const kept: Ref[] = [];
    for (const o of current) {
      const ref = refOf(o);
      if (targetKeys.has(refKey(ref))) continue;
      const live = this.cluster.tryGet(ref);
      if (!live) continue;
      if (live.metadata.annotations?.[RESOURCE_POLICY] === 'keep') {
        kept.push(ref);
        continue;
      }
      this.cluster.delete(ref);
      deleted.push(ref);
    }
    return { deleted, kept };
  }

  async upgrade(name: string, chart: string, opts: UpgradeOptions): Promise<ReleaseRecord> {
    try {
      const history = this.history(name, opts.namespace);
      if (opts.install && (history.length === 0 || history.at(-1)!.status === 'uninstalled')) {
        return await this.doInstall(name, chart, opts);
      }
      return await this.doUpgrade(name, chart, opts, history);
    } catch (err) {
      throw this.asHelmError(err, 'UPGRADE FAILED');
    } finally {
      this.cluster.settle();
    }
  }

  private async doUpgrade(
    name: string,
    chart: string,
    opts: UpgradeOptions,
    history: ReleaseRecord[],
  ): Promise<ReleaseRecord> {
    const last = history.at(-1);
    if (!last) throw new HelmError(`"${name}" has no deployed releases`);
    if (last.status.startsWith('pending'))
      throw new HelmError('another operation (install/upgrade/rollback) is in progress');
    const current =
      last.status === 'deployed'
        ? last
        : ([...history].reverse().find((r) => r.status === 'deployed') ?? last);

    // reuseValues()
    let config = this.userValues(opts);
    let chartValues: Values | undefined;
    if (opts.resetValues) {
      // the new values alone
    } else if (opts.reuseValues) {
      chartValues = coalesceValues(current.config, current.chartDefaults);
      config = coalesceTables(config, clone(current.config));
    } else if (opts.resetThenReuseValues) {
      config = coalesceTables(config, clone(current.config));
    } else if (Object.keys(config).length === 0 && Object.keys(current.config).length > 0) {
      config = clone(current.config);
    }

    const remote = opts.dryRun !== 'client';
    const rendered = this.render(
      { name, chart, namespace: current.namespace, config },
      {
        remote,
        isUpgrade: true,
        ...(chartValues ? { chartValues } : {}),
      },
    );
    const rel: ReleaseRecord = {
      name,
      namespace: current.namespace,
      version: last.version + 1,
      status: 'pending-upgrade',
      chart,
      chartDefaults: chartValues ?? chartDefaults(chart),
      config,
      manifest: rendered.manifest,
      hooks: rendered.hooks,
    };
    const target = rendered.manifest.map((o) => withOwnership(o, name, current.namespace));
    const currentObjects = [...current.manifest];
    const existingKeys = new Set(currentObjects.map((o) => refKey(refOf(o))));
    const toBeCreated = target.filter((o) => !existingKeys.has(refKey(refOf(o))));
    if (remote) {
      currentObjects.push(
        ...this.adoptable(
          toBeCreated,
          { name, namespace: current.namespace },
          { takeOwnership: opts.takeOwnership ?? false, action: 'update' },
        ),
      );
    }
    if (opts.dryRun) return rel;

    this.writeRecord(rel, true);
    try {
      if (!opts.noHooks)
        await this.execHooks(rel, 'pre-upgrade').catch((err: Error) => {
          throw new HelmError(`pre-upgrade hooks failed: ${err.message}`);
        });
      const { kept } = this.updateObjects(currentObjects, target);
      for (const ref of kept)
        this.output.push(
          `Skipping delete of ${describeRef(ref)} due to annotation [helm.sh/resource-policy=keep]`,
        );
      if (!opts.noHooks)
        await this.execHooks(rel, 'post-upgrade').catch((err: Error) => {
          throw new HelmError(`post-upgrade hooks failed: ${err.message}`);
        });
    } catch (err) {
      rel.status = 'failed';
      this.writeRecord(rel, false);
      throw err;
    }
    current.status = 'superseded';
    this.writeRecord(current, false);
    rel.status = 'deployed';
    this.writeRecord(rel, false);
    return rel;
  }

  async uninstall(name: string, opts: UninstallOptions): Promise<{ kept: Ref[] }> {
    try {
      return await this.doUninstall(name, opts);
    } catch (err) {
      if (err instanceof ApiError) throw new HelmError(err.message);
      throw err;
    } finally {
      this.cluster.settle();
    }
  }

  private async doUninstall(name: string, opts: UninstallOptions): Promise<{ kept: Ref[] }> {
    const history = this.history(name, opts.namespace);
    const rel = history.at(-1);
    if (!rel) throw new HelmError(`uninstall: Release not loaded: ${name}: release: not found`);
    if (rel.status === 'uninstalled')
      throw new HelmError(`the release named "${name}" is already deleted`);
    if (!opts.noHooks) await this.execHooks(rel, 'pre-delete');
    rel.status = 'uninstalling';
    this.writeRecord(rel, false);

    const kept: Ref[] = [];
    for (const o of sortByKind(rel.manifest, (m) => m.kind, UNINSTALL_ORDER)) {
      const ref = refOf(o);
      if (o.metadata.annotations?.[RESOURCE_POLICY]?.trim().toLowerCase() === 'keep') {
        kept.push(ref);
        continue;
      }
      try {
        this.cluster.delete(ref);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    const errors: string[] = [];
    if (!opts.noHooks) {
      try {
        await this.execHooks(rel, 'post-delete');
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    rel.status = 'uninstalled';
    if (opts.keepHistory) {
      this.writeRecord(rel, false);
    } else {
      for (const r of history) {
        try {
          this.cluster.delete({
            kind: 'Secret',
            namespace: r.namespace,
            name: this.recordName(r.name, r.version),
          });
        } catch (err) {
          errors.push(
            `uninstall: Failed to purge the release: delete: failed to delete release: ${this.recordName(r.name, r.version)}: ${(err as Error).message}`,
          );
        }
      }
    }
    if (errors.length)
      throw new HelmError(
        `uninstallation completed with ${errors.length} error(s): ${errors.join('; ')}`,
      );
    return { kept };
  }

  /** `helm test`: the release's test hooks, run as hooks of event "test". */
  async test(name: string, opts: { namespace: string }): Promise<void> {
    const rel = this.history(name, opts.namespace).at(-1);
    if (!rel || rel.status !== 'deployed') throw new HelmError(`release: not found`);
    try {
      await this.execHooks(
        {
          ...rel,
          hooks: rel.hooks.map((h) => ({
            ...h,
            events: h.events.map((e) => (e === 'test-success' ? 'test' : e)),
          })),
        },
        'test',
      );
    } finally {
      this.cluster.settle();
    }
  }

  status(name: string, namespace: string): ReleaseRecord | undefined {
    return this.history(name, namespace).at(-1);
  }
}

function chartDefaults(chart: string): Values {
  return (parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) ?? {}) as Values;
}
