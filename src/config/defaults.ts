// Every default, label and annotation key the project uses lives here, so the webhook, the CLI, the
// node agent and the manifests cannot drift apart.

/** Host directory pods take their hostPaths from: a tmpfs "anchor" the node agent keeps alive. */
export const DEFAULT_LXCFS_ROOT = '/var/lib/lxcfs';

/**
 * Files lxcfs serves that may be mounted into a container. runc accepts bind mounts over /proc only
 * for these (older runc: not loadavg and slabinfo); anything else under /proc (e.g. /proc/pressure)
 * makes every injected pod fail to start, so it is never allowed.
 */
export const ALLOWED_FILES = [
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/loadavg',
  '/proc/meminfo',
  '/proc/slabinfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/sys/devices/system/cpu/online',
] as const;
export type LxcfsFile = (typeof ALLOWED_FILES)[number];

/** Injected unless configured otherwise. slabinfo is left out: it is root-only and rarely read. */
export const DEFAULT_FILES: readonly LxcfsFile[] = ALLOWED_FILES.filter((file) => file !== '/proc/slabinfo');

/** Namespace label users of the older lxcfs-admission-webhook already know. */
export const NAMESPACE_LABEL = { key: 'lxcfs-admission-webhook', value: 'enabled' } as const;

/** Pod label: `enabled` opts a pod in outside labelled namespaces, `disabled` opts it out. */
export const POD_LABEL = 'lxcfs-webhook.io/inject';
export const POD_LABEL_ENABLED = 'enabled';
export const POD_LABEL_DISABLED = 'disabled';

export const ANNOTATIONS = {
  /** "false" opts the pod out. */
  inject: 'lxcfs-webhook.io/inject',
  /** Older opt-out honoured for migration: n|no|false|off. */
  legacyMutate: 'lxcfs-admission-webhook.kubernetes.io/mutate',
  /** Comma-separated container names left alone. */
  excludeContainers: 'lxcfs-webhook.io/exclude-containers',
  /** Comma-separated subset of the configured files, by short name (meminfo) or path. */
  files: 'lxcfs-webhook.io/files',
  /** "true" also injects into (non-sidecar) init containers. */
  includeInitContainers: 'lxcfs-webhook.io/include-init-containers',
  /** Written by the webhook: what was injected and skipped, per container. */
  status: 'lxcfs-webhook.io/status',
} as const;

/** Kubelet marks mirror pods of static pods with this annotation; they must never be mutated. */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

/** Prefix of the volumes the webhook adds; the rest of the name is derived from the file path. */
export const VOLUME_PREFIX = 'lxcfs-';

export const DEFAULT_WEBHOOK_PORT = 8443;
export const DEFAULT_WEBHOOK_HEALTH_PORT = 8080;
export const DEFAULT_AGENT_HEALTH_PORT = 8081;
export const MUTATE_PATH = '/mutate';
