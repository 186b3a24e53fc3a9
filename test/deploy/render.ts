// Renders a kustomization with the real `kubectl kustomize` and returns its objects.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
  };
  [key: string]: any;
}

export function kustomize(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as K8sObject)
    .filter((o) => o !== null);
}

/**
 * An overlay plus a component, as a user adds one: writes a kustomization of our own in `dir` (created)
 * naming both by relative path; returns `dir`.
 */
export function kustomizationWithComponent(
  overlay: string,
  component: string,
  dir: string,
): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      `resources: [${relative(dir, overlay)}]`,
      `components: [${relative(dir, component)}]`,
      '',
    ].join('\n'),
  );
  return dir;
}

/** The objects of an overlay plus a component (kustomizationWithComponent), rendered. */
export function kustomizeWithComponent(
  overlay: string,
  component: string,
  dir: string,
): K8sObject[] {
  return kustomize(kustomizationWithComponent(overlay, component, dir));
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found)
    throw new Error(
      `${kind}/${name} not rendered; have ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  return found;
}
