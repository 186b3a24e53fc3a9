// The few Pod fields the rules read, as loose JSON shapes. Pods are never decoded into full typed
// structs and written back: that drops fields unknown to us and reorders users' lists. Every field is
// optional because admission requests can carry anything.

export interface VolumeMount {
  name?: string;
  mountPath?: string;
  readOnly?: boolean;
  [key: string]: unknown;
}

export interface Container {
  name?: string;
  restartPolicy?: string;
  volumeMounts?: VolumeMount[];
  [key: string]: unknown;
}

export interface Volume {
  name?: string;
  hostPath?: { path?: string; type?: string };
  [key: string]: unknown;
}

export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  volumes?: Volume[];
  hostPID?: boolean;
  os?: { name?: string };
  nodeSelector?: Record<string, string>;
  [key: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: PodSpec;
  [key: string]: unknown;
}

/** The three container lists of a Pod spec, in the order they are reported. */
export type ContainerList = 'containers' | 'initContainers' | 'ephemeralContainers';

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A list field that is really an array of objects, or an empty list when it is absent or malformed. */
export function listOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value.filter(isObject) as T[]) : [];
}

/** The object entries of a list with their index in the original array, for patch paths. */
export function indexedListOf<T>(value: unknown): Array<{ item: T; index: number }> {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item: unknown, index) =>
    isObject(item) ? [{ item: item as T, index }] : [],
  );
}

/**
 * A labels or annotations map with every value as a string: the API server only sends strings, but
 * a hand-made request or manifest may carry `inject: false` unquoted.
 */
export function stringMap(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, String(v)]),
  );
}
