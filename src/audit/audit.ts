// `audit` without the I/O: for every live pod of the input, the webhook entry that selects it
// (selection.ts), what the webhook would change in it (findings.ts, through mutatePod), and who
// recreates it (owners.ts); then one fix per owner. Pure.
import { stringMap } from '../inject/pod.js';
import type { InjectionSettings } from '../inject/settings.js';
import {
  examinePod,
  FINDING_KINDS,
  type FindingKind,
  type ForeignVolume,
  type PodFinding,
} from './findings.js';
import type { AuditInput } from './input.js';
import { fixFor, ownerName, ownerOf, type Fix, type Owner } from './owners.js';
import {
  namespaceProblem,
  webhookEntries,
  webhookIn,
  type SelectionOptions,
  type WebhookMode,
} from './selection.js';

export interface AffectedPod {
  namespace: string;
  name: string;
  /** The webhook entry that selects the pod: `required` pods are refused while the webhook is down. */
  mode: WebhookMode;
  finding: PodFinding;
  /** `deployment/web`, as in the fixes. */
  owner: string;
}

export interface OwnerFix {
  namespace: string;
  owner: string;
  /** Set when the owner could not be fully named (a ReplicaSet without the input's ReplicaSets). */
  ownerNote?: string;
  pods: string[];
  findings: FindingKind[];
  /** other-injector: the volumes of its pods, to recognise the injector by. */
  foreignVolumes?: ForeignVolume[];
  fix: Fix;
  /** What must happen before the fix helps. */
  before?: string;
}

export interface AuditReport {
  summary: {
    namespaces: number;
    pods: number;
    /** Succeeded, Failed or being deleted: never restarted, so not audited. */
    finished: number;
    selected: Record<WebhookMode, number>;
    affected: number;
  };
  namespaces: Array<{ namespace: string; problem: string }>;
  pods: AffectedPod[];
  fixes: OwnerFix[];
}

/** A restart alone brings the same volumes back in these cases. */
const BEFORE: Partial<Record<FindingKind, string>> = {
  'other-injector':
    'stop the other injector from selecting these pods (uninstall it or remove its label), or its volumes come back',
  'other-root':
    "make the agent's and the webhook's --lxcfs-root agree; a pod template that carries the volumes (inject --lxcfs-root) must be injected again",
};

const FINISHED_PHASES = new Set(['Succeeded', 'Failed']);

export function audit(
  input: AuditInput,
  settings: InjectionSettings,
  selection: SelectionOptions = { mountLxcfsLabel: false },
): AuditReport {
  const report: AuditReport = {
    summary: {
      namespaces: input.namespaces.size,
      pods: input.pods.length,
      finished: 0,
      selected: { required: 0, enabled: 0, 'pod-label': 0 },
      affected: 0,
    },
    namespaces: [],
    pods: [],
    fixes: [],
  };
  const selectors = new Map(
    [...input.namespaces.values()].map((ns) => [ns.name, webhookIn(ns, webhookEntries(selection))]),
  );
  for (const ns of [...input.namespaces.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const problem = namespaceProblem(ns.name, ns.labels);
    if (problem !== undefined) report.namespaces.push({ namespace: ns.name, problem });
  }

  const byOwner = new Map<string, { owner: Owner; pods: AffectedPod[] }>();
  for (const { namespace, pod } of input.pods) {
    const status = pod.status as { phase?: unknown } | undefined;
    if (
      FINISHED_PHASES.has(String(status?.phase)) ||
      pod.metadata?.deletionTimestamp !== undefined
    ) {
      report.summary.finished++;
      continue;
    }
    const entry = selectors.get(namespace)!(stringMap(pod.metadata?.labels));
    if (entry === undefined) continue;
    report.summary.selected[entry.mode]++;
    const finding = examinePod(pod, settings);
    if (finding === undefined) continue;
    const owner = ownerOf(pod, namespace, input.replicaSets);
    const affected: AffectedPod = {
      namespace,
      name: String(pod.metadata?.name),
      mode: entry.mode,
      finding,
      owner: ownerName(owner),
    };
    report.pods.push(affected);
    const key = `${namespace}/${affected.owner}`;
    byOwner.set(key, { owner, pods: [...(byOwner.get(key)?.pods ?? []), affected] });
  }
  report.summary.affected = report.pods.length;

  const order = (kind: FindingKind) => FINDING_KINDS.indexOf(kind);
  report.pods.sort(
    (a, b) =>
      a.namespace.localeCompare(b.namespace) ||
      a.owner.localeCompare(b.owner) ||
      a.name.localeCompare(b.name),
  );
  report.fixes = [...byOwner.values()]
    .map(({ owner, pods }): OwnerFix => {
      const names = pods.map((p) => p.name).sort();
      const findings = [...new Set(pods.map((p) => p.finding.kind))].sort(
        (a, b) => order(a) - order(b),
      );
      const before = findings.map((kind) => BEFORE[kind]).filter((text) => text !== undefined);
      // Pods of one owner share a template: the union of their volumes, once.
      const volumes = new Map(
        pods.flatMap((p) => p.finding.foreignVolumes ?? []).map((v) => [v.name, v]),
      );
      return {
        namespace: owner.namespace,
        owner: ownerName(owner),
        ...(owner.note === undefined ? {} : { ownerNote: owner.note }),
        pods: names,
        findings,
        ...(volumes.size === 0 ? {} : { foreignVolumes: [...volumes.values()] }),
        fix: fixFor(owner, names),
        ...(before.length === 0 ? {} : { before: before.join('; ') }),
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.owner.localeCompare(b.owner));
  return report;
}
