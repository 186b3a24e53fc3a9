// Kubernetes label-selector semantics (k8s.io/apimachinery labels.Selector), written apart from
// src/audit/selection.ts so that tests check the module against the rules rather than against itself:
// matchLabels and every matchExpression must hold; `NotIn` and `DoesNotExist` hold when the key is
// absent; `In` and `Exists` need it.
interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}
export interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Requirement[];
}

export function labelsMatch(
  selector: Selector | undefined,
  labels: Record<string, string>,
): boolean {
  if (selector === undefined) return true; // an absent selector on a webhook matches everything
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = key in labels;
    const ok =
      operator === 'In'
        ? present && values.includes(labels[key]!)
        : operator === 'NotIn'
          ? !present || !values.includes(labels[key]!)
          : operator === 'Exists'
            ? present
            : operator === 'DoesNotExist'
              ? !present
              : undefined;
    if (ok === undefined)
      throw new Error(`label selector operator ${operator} is not one Kubernetes knows`);
    if (!ok) return false;
  }
  return true;
}
