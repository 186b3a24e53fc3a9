// Validates any Kubernetes object against its published schema (kubernetes-models, plus cert-manager's
// and the Prometheus Operator's CRDs), found by apiVersion and kind. Objects with no schema available here are listed explicitly by
// callers instead of being passed silently.
import * as core from 'kubernetes-models';
import * as certManager from '@kubernetes-models/cert-manager';
import * as prometheusOperator from '@kubernetes-models/prometheus-operator';

type ModelClass = new (data: unknown) => { validate(): void };

/** `admissionregistration.k8s.io` → `admissionregistrationK8sIo`, the export name the packages use. */
function groupKey(group: string): string {
  return group.replace(/[.-]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function schemaFor(apiVersion: string, kind: string): ModelClass | undefined {
  const [group, version] = apiVersion.includes('/')
    ? (apiVersion.split('/') as [string, string])
    : ['', apiVersion];
  for (const pkg of [core, certManager, prometheusOperator] as unknown as Array<
    Record<string, any>
  >) {
    // Core kinds live at `v1.Pod`, grouped ones at `apps.v1.DaemonSet`.
    const versionExports = group === '' ? pkg[version] : pkg[groupKey(group)]?.[version];
    const model = versionExports?.[kind] as ModelClass | undefined;
    if (model) return model;
  }
  return undefined;
}

export function validateObject(object: { apiVersion?: unknown; kind?: unknown }): void {
  const model = schemaFor(String(object.apiVersion), String(object.kind));
  if (!model) throw new Error(`no schema for ${String(object.apiVersion)} ${String(object.kind)}`);
  new model(object).validate();
}
