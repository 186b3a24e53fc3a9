// Every default, label and annotation key the project uses lives here, so the webhook, the CLI, the
// node agent and the manifests cannot drift apart.
import { fileURLToPath } from 'node:url';

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

// ---- Certificates ---------------------------------------------------------------------------------

/** Lifetimes `certs` gives the serving certificate and a new CA (`--valid-days`, `--ca-valid-days`). */
export const DEFAULT_SERVING_CERT_VALID_DAYS = 365;
export const DEFAULT_CA_VALID_DAYS = 3650;
/** Upper bound of both flags: a hundred years. */
export const MAX_CERT_VALID_DAYS = 36_500;
/** Lifetime of the in-memory localhost certificate of `serve` without certificate files. */
export const LOCALHOST_CERT_VALID_DAYS = 30;
/** Certificates start this long in the past so a peer whose clock is behind accepts them at once. */
export const CERT_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Names the install manifests (deploy/) use; `certs` writes objects that refer to them. */
export const INSTALL = {
  namespace: 'lxcfs',
  service: 'lxcfs-webhook',
  tlsSecret: 'lxcfs-webhook-tls',
  webhookConfiguration: 'lxcfs-webhook',
  webhooks: ['namespaces.lxcfs-webhook.io', 'pods.lxcfs-webhook.io'],
} as const;
/**
 * Largest AdmissionReview body `serve` reads. The API server caps an object at 3 MiB and an UPDATE
 * carries it twice (object and oldObject), so 8 MiB never refuses a real review.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/**
 * Seconds `serve` keeps answering after SIGTERM (not ready, `Connection: close`) so the API server
 * moves to other replicas. Plus a few seconds to finish in-flight requests, it must fit in the pod's
 * terminationGracePeriodSeconds (30 by default).
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Bounds of `serve --max-request-bytes`: below 64 KiB ordinary pods would be refused; above 1 GiB one request could fill memory. */
export const MIN_REQUEST_BYTES = 64 * 1024;
export const MAX_REQUEST_BYTES = 1024 * 1024 * 1024;
/** After the shutdown grace period, how long requests still in flight may take before their connections are cut. */
export const WEBHOOK_IN_FLIGHT_TIMEOUT_MS = 5_000;
/** How long after a change in the certificate files' directories they are read (the rest of an update lands). */
export const TLS_RELOAD_SETTLE_MS = 100;
/** Backup poll of the certificate files, for changes the directory watch misses. */
export const TLS_RELOAD_POLL_INTERVAL_MS = 10_000;
/** Bytes of log lines that may wait for a slow reader of stdout; beyond that, lines are dropped. */
export const LOG_ASYNC_BUFFER_BYTES = 16 * 1024 * 1024;
/** Longest warning returned to the API server: Kubernetes asks admission warnings to stay within 120 characters. */
export const WARNING_MAX_LENGTH = 120;
/**
 * Node flags the webhook runs with (image entrypoint, benchmark). A 2 MiB young generation instead of
 * V8's 16 MiB keeps a busy webhook near 85 MiB RSS instead of over 100, at no measurable cost: its
 * garbage dies young. V8 reads it only at start-up, so it cannot be set from inside `serve`.
 */
export const WEBHOOK_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

// ---- Node agent -------------------------------------------------------------------------------------

/** Where lxcfs itself mounts: private to the agent; pods only ever see the anchor's binds of it. */
export const DEFAULT_FUSE_MOUNT = '/run/lxcfs-webhook/fuse';
/** lxcfs writes and locks its pidfile next to the FUSE mountpoint, never on the shared /run/lxcfs.pid. */
export const LXCFS_PIDFILE_NAME = 'lxcfs.pid';
export const DEFAULT_LXCFS_BIN = 'lxcfs';
/** CPU count from the CFS quota, per-container load average. */
export const DEFAULT_LXCFS_ARGS: readonly string[] = ['--enable-cfs', '-l'];
export const DEFAULT_PROC = '/proc';
/** The native remount helper, built by `npm run build` into native/build of this package. */
export const DEFAULT_REMOUNT_HELPER = fileURLToPath(new URL('../../../native/build/lxcfs-remount', import.meta.url));
/** Mount options of the anchor tmpfs: it holds only directories, binds and the agent's small state file. */
export const ANCHOR_TMPFS_OPTIONS = 'mode=0755,size=8m';
/** The agent's memory of injected targets, kept on the anchor so it outlives the agent process. */
export const AGENT_STATE_FILE = '.lxcfs-webhook-agent.json';

export const DEFAULT_SWEEP_INTERVAL_MS = 10_000;
/** How often lxcfs is read through FUSE, and how long one read may take before it counts as a hang. */
export const DEFAULT_PROBE_INTERVAL_MS = 5_000;
export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;
/** lxcfs failing every probe for this long is killed and restarted. */
export const DEFAULT_HANG_GRACE_MS = 15_000;
/** Restart backoff: first delay, doubling up to the cap; reset once lxcfs stayed healthy this long. */
export const LXCFS_RESTART_BACKOFF = { firstMs: 100, maxMs: 30_000, resetAfterMs: 60_000 } as const;
/** How long lxcfs may take to mount, and to exit after SIGTERM before it gets SIGKILL. */
export const LXCFS_START_TIMEOUT_MS = 10_000;
export const LXCFS_STOP_TIMEOUT_MS = 10_000;
/** Remount helpers run at once, namespaces per helper run, and how long one run may take. */
export const REMOUNT_PARALLELISM = 4;
export const REMOUNT_BATCH_SIZE = 25;
export const NATIVE_HELPER_TIMEOUT_MS = 5_000;
/** Broken containers `check node` lists one per line; more would not fit a screen. */
export const CHECK_MAX_LISTED_CONTAINERS = 15;

// ---- CLI --------------------------------------------------------------------------------------------

/** Longest duration any flag takes (`60m`): more is a typo, and Node timers overflow at about 24 days. */
export const MAX_DURATION_MS = 60 * 60 * 1000;
/** Width `--help` fits in. */
export const HELP_WIDTH = 100;
