// Every default, label and annotation key the project uses lives here, so the webhook, the CLI, the
// node agent and the manifests cannot drift apart.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A file of native/ (the C parts): the one built here, else the one prebuilt for this machine. */
const nativeFiles = (name: string) =>
  ['build', `prebuilt/${process.platform}-${process.arch}`].map((dir) =>
    fileURLToPath(new URL(`../../../native/${dir}/${name}`, import.meta.url)),
  );

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
export const DEFAULT_FILES: readonly LxcfsFile[] = ALLOWED_FILES.filter(
  (file) => file !== '/proc/slabinfo',
);

/** Namespace label users of the older lxcfs-admission-webhook already know. */
export const NAMESPACE_LABEL = { key: 'lxcfs-admission-webhook', value: 'enabled' } as const;

/**
 * Namespace label other injectors' users know (`mount-lxcfs=enabled`). Selected only when the install
 * includes the component INSTALL.mountLxcfsComponent; otherwise its webhook entry selects nothing.
 */
export const MOUNT_LXCFS_LABEL = { key: 'mount-lxcfs', value: 'enabled' } as const;

/** Pod label: `enabled` opts a pod in outside labelled namespaces, `disabled` opts it out. */
export const POD_LABEL = 'lxcfs-webhook.io/inject';
export const POD_LABEL_ENABLED = 'enabled';
export const POD_LABEL_DISABLED = 'disabled';

export const ANNOTATIONS = {
  /** "false" opts the pod out. */
  inject: 'lxcfs-webhook.io/inject',
  /** Older opt-out honoured for migration: any false word of BOOLEAN_WORDS. */
  legacyMutate: 'lxcfs-admission-webhook.kubernetes.io/mutate',
  /** The opt-out of the widely copied Aliyun injector (AliyunContainerService/lxcfs-admission-webhook). */
  aliyunMutate: 'lxcfs-admission-webhook.aliyun.com/mutate',
  /** The opt-out of other lxcfs-admission-webhook forks: "false" leaves the pod alone. */
  forkEnable: 'mutating.lxcfs-admission-webhook.io/enable',
  /** Comma-separated container names left alone. */
  excludeContainers: 'lxcfs-webhook.io/exclude-containers',
  /** Comma-separated subset of the configured files, by short name (meminfo) or path. */
  files: 'lxcfs-webhook.io/files',
  /** "true" also injects into (non-sidecar) init containers. */
  includeInitContainers: 'lxcfs-webhook.io/include-init-containers',
  /** Written by the webhook: what was injected and skipped, per container. */
  status: 'lxcfs-webhook.io/status',
} as const;

/**
 * Annotations whose false word opts a pod out: ours and other injectors' (honoured so that moving to us
 * never injects a pod its owner had opted out). Each takes BOOLEAN_WORDS; a true word changes nothing.
 */
export const OPT_OUT_ANNOTATIONS: readonly string[] = [
  ANNOTATIONS.inject,
  ANNOTATIONS.legacyMutate,
  ANNOTATIONS.aliyunMutate,
  ANNOTATIONS.forkEnable,
];

/**
 * The one set of words every boolean annotation accepts, compared case-insensitively after trimming:
 * the union of what the injectors people migrate from accepted (y/yes/on/true and their opposites), plus
 * enabled/disabled, the values of our pod label.
 */
export const BOOLEAN_WORDS = {
  true: ['true', 'yes', 'y', 'on', 'enabled'],
  false: ['false', 'no', 'n', 'off', 'disabled'],
} as const;

/**
 * Other lxcfs injectors, recognised by the pods they injected so that we name them and never stack our
 * mounts on theirs: by an annotation they write, or by the host directory their volumes come from (the
 * hostPath minus the container path it is mounted at). The first entry that matches names the injector.
 */
export const OTHER_INJECTORS: ReadonlyArray<{
  name: string;
  annotation?: string;
  roots?: readonly string[];
}> = [
  {
    name: 'Aliyun lxcfs-admission-webhook',
    annotation: 'lxcfs-admission-webhook.aliyun.com/status',
  },
  { name: 'kubeservice-stack/lxcfs-webhook', roots: ['/var/lib/lxc/lxcfs'] },
  { name: 'cndoit18/lxcfs-on-kubernetes', roots: ['/var/lib/lxcfs-on-k8s/lxcfs'] },
  // Our default root without our volume shape (no `type: File`): the Aliyun injector and its many copies.
  { name: 'lxcfs-admission-webhook (Aliyun or a copy)', roots: ['/var/lib/lxcfs'] },
];

/**
 * RuntimeClasses whose pods get their own kernel or their own /proc, where lxcfs is wrong or useless:
 * gVisor (runsc) answers /proc itself from the sandbox's limits, Kata runs a VM whose /proc is the
 * VM's, and sysbox virtualises /proc in the container (it ships its own lxcfs-like sysbox-fs). A host
 * path bind-mounted into them either shows the host's view (Kata: across virtiofs, the node's lxcfs
 * sees the VM's process, not the container's cgroup) or is refused. A trailing `*` matches a prefix.
 * Pods of these classes are skipped with `skipped.reason: sandboxed-runtime` in the status.
 */
export const DEFAULT_SANDBOX_RUNTIME_CLASSES: readonly string[] = [
  'gvisor',
  'runsc',
  'kata',
  'kata-*',
  'sysbox-runc',
];

/**
 * Pods with `hostUsers: false` (their own user namespace; GA in Kubernetes 1.36) are skipped. The kubelet
 * asks the runtime for an idmapped mount of every volume of such a pod ("all filesystems used in the
 * pod's volumes must support idmap mounts": kubernetes.io/docs/concepts/workloads/pods/user-namespaces).
 * Our hostPaths are binds of lxcfs' FUSE files, and the kernel refuses to idmap a FUSE mount
 * (SB_I_NOIDMAP) unless the FUSE server negotiated FUSE_ALLOW_IDMAP with default_permissions (Linux
 * >= 6.12), which lxcfs does not: the runtime's mount_setattr fails with EINVAL and the container never
 * starts (CreateContainerError). Skipping leaves the pod the node's /proc, which it starts with.
 */
export const USER_NAMESPACE_SKIP =
  'hostUsers: false (user namespace): the runtime must idmap every volume and cannot idmap lxcfs (FUSE); not injected, or the pod would not start';

/**
 * shareProcessNamespace: true pods are injected, with a warning. lxcfs answers a read from the cgroup
 * of pid 1 of the reader's pid namespace (lookup_initpid_in_store in lxcfs' proc_fuse.c, cpuview.c,
 * loadavg.c); in a shared pid namespace that is the pause container, whose cgroup sits right under
 * the pod's, so every container sees the pod's totals (the sum of its containers' limits, the node's
 * when one has none) and the pod's uptime, not its own limits. Still closer than the node's /proc.
 */
export const SHARED_PID_NAMESPACE_WARNING =
  "shareProcessNamespace: every container sees the pod's totals in lxcfs (pid 1 is pause), not its own limits";

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
/** `certs --secret` renews the serving certificate (or the CA) when fewer days than this are left. */
export const DEFAULT_RENEW_BEFORE_DAYS = 30;
/**
 * After `certs --secret` made a new serving certificate (a new install, a new CA, a switch from another
 * certificate mode), the caBundle keeps the CAs it had besides ours this long: replicas still serving the
 * previous certificate stay trusted until the kubelet has given them the new Secret.
 */
export const CA_BUNDLE_OVERLAP_MS = 24 * 60 * 60 * 1000;
/** How `certs --secret` marks the Secret it makes; a Secret without this label is never taken over. */
export const CERTS_SECRET_LABEL = {
  key: 'app.kubernetes.io/managed-by',
  value: 'lxcfs-webhook-certs',
} as const;

// ---- The Kubernetes API, from inside a pod (certs --secret) ----------------------------------------

/** Where the kubelet mounts a pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** One API call's deadline. */
export const KUBE_API_TIMEOUT_MS = 15_000;

/** Names the install manifests (deploy/) use; `certs` writes objects that refer to them. */
export const INSTALL = {
  namespace: 'lxcfs',
  /** The node agent's DaemonSet: `check node`'s hints name it. */
  agentDaemonSet: 'lxcfs-agent',
  service: 'lxcfs-webhook',
  tlsSecret: 'lxcfs-webhook-tls',
  webhookConfiguration: 'lxcfs-webhook',
  webhooks: [
    'namespaces.lxcfs-webhook.io',
    'pods.lxcfs-webhook.io',
    'required.lxcfs-webhook.io',
    'mount-lxcfs.lxcfs-webhook.io',
  ],
  /** The Secret the Helm chart's `certs` Job makes (certificates.mode=self-signed). */
  selfSignedSecret: 'lxcfs-webhook-self-signed',
  /** The DaemonSet that runs `agent --uninstall` on every node (deploy/uninstall, the chart's uninstall.cleanNodes). */
  cleanupDaemonSet: 'lxcfs-cleanup',
  /** The kustomize component that turns on the MOUNT_LXCFS_LABEL entry (deploy/components/). */
  mountLxcfsComponent: 'deploy/components/mount-lxcfs-label',
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
/**
 * Request bodies `serve` holds at once, all connections together (`--max-request-bytes-in-flight`). A
 * body is counted from its Content-Length before any of it is read (a chunked one as it arrives); one
 * that does not fit is answered 503 at once and its connection closed. 32 MiB is four bodies of the
 * largest size, or a thousand ordinary reviews (~20 KiB) at once; with the reviews' own work and the
 * connections' TLS buffers it keeps `serve` inside the Deployment's 256Mi limit (test/fault/webhook.test.ts).
 */
export const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT = 32 * 1024 * 1024;
/** After the shutdown grace period, how long requests still in flight may take before their connections are cut. */
export const WEBHOOK_IN_FLIGHT_TIMEOUT_MS = 5_000;
/** How long after a change in the certificate files' directories they are read (the rest of an update lands). */
export const TLS_RELOAD_SETTLE_MS = 100;
/** Backup poll of the certificate files, for changes the directory watch misses. */
export const TLS_RELOAD_POLL_INTERVAL_MS = 10_000;
/**
 * The DNS name the API server checks the serving certificate for: `<service>.<namespace>.svc` of the
 * webhook configuration's Service (k8s.io/apiserver/pkg/util/webhook/client.go sets it as the TLS
 * ServerName). `serve --tls-server-name`; certificates without it are not served.
 */
export const DEFAULT_TLS_SERVER_NAME = `${INSTALL.service}.${INSTALL.namespace}.svc`;
/**
 * Largest certificate chain served, in DER bytes (what the TLS Certificate message carries, plus 3-5
 * bytes of framing a certificate). Go's TLS client, which the API server uses, takes 256 KiB for a
 * Certificate message (maxHandshakeCertificateMsg, crypto/tls/common.go) but refused anything over
 * 64 KiB before that was raised in 2022 (golang/go#50773), and OpenSSL clients refuse more than
 * 100 KiB; 60 KiB keeps every such client working. Real chains are 1-6 KiB.
 */
export const CERT_CHAIN_MAX_BYTES = 60 * 1024;
/**
 * A certificate warns once less than this part of its lifetime is left, and at most CERT_EXPIRY_WARNING_MAX_MS
 * before its end: halfway between cert-manager's default renewal (a third of the lifetime left) and
 * expiry, so a renewal that is late warns while a short-lived certificate renewed on time never does.
 * A 90-day cert-manager certificate warns 15 days before its end, a 365-day one from `certs` 30 days before.
 */
export const CERT_EXPIRY_WARNING_FRACTION = 1 / 6;
export const CERT_EXPIRY_WARNING_MAX_MS = 30 * 24 * 60 * 60 * 1000;
/** How often a running `serve` looks at the certificate in use and warns again if it expires soon. */
export const CERT_EXPIRY_CHECK_INTERVAL_MS = 60 * 60 * 1000;
/** Bytes of log lines that may wait for a slow reader of stdout; beyond that, lines are dropped. */
export const LOG_ASYNC_BUFFER_BYTES = 16 * 1024 * 1024;
/** How long a busy server collects log lines before writing them out at once: how late a line may be. */
export const LOG_BATCH_MS = 10;
/**
 * Node flags the webhook runs with (image entrypoint, benchmark). V8's 16 MiB young generation would
 * hold a busy webhook's RSS over 100 MiB; its garbage dies young, so a small one costs little: at 2 MiB
 * scavenges took 13 % of a saturated webhook's CPU, at 4 MiB 7 % (bench/webhook.ts, Node 24), for a
 * few MiB more. V8 reads it only at start-up, so it cannot be set from inside `serve`.
 */
export const WEBHOOK_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

// ---- Webhook transport: timeouts, connections, response sizes ----------------------------------------

/**
 * A connection must finish its TLS handshake within this. The API server's handshake takes a few
 * milliseconds (its own limit is 10 s); a socket still silent after 5 s is a scanner, a dead peer or a
 * slowloris.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;
/** The API server keeps idle connections to webhooks for 90 s; closing them sooner races its reuse. */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;
/**
 * These two only run while a request is being received (Node >= 18 does not count the idle time
 * between keep-alive requests), so they can be far below the keep-alive timeout. The API server writes
 * a request's headers and body at once, so 10 s for the headers is long. 30 s is the longest
 * timeoutSeconds a webhook configuration may have: after that the API server has given up anyway. A
 * request that carries the API server's `?timeout=` (its configuration's timeoutSeconds) gets that
 * deadline instead, for receiving the body and for its answer to be taken (connections.ts).
 */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * A connection silent before its first request, or stalled mid-request. Node's headers timeout does
 * not cover a connection that never sends a byte, and a socket timeout above the headers timeout
 * never fires on one (seen on Node 20 and 24), so keep it at the headers timeout.
 */
export const SOCKET_IDLE_TIMEOUT_MS = HEADERS_TIMEOUT_MS;
/**
 * How often Node checks the headers and request timeouts. Its default, 30 s, lets a slowloris client
 * (one header byte now and then, so the idle timeout never fires) hold a connection for up to 45 s
 * instead of 15; a scan of at most --max-connections sockets each second costs nothing measurable.
 */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/**
 * Connections `serve` holds at once; beyond it, a new connection takes the place of an idle or unfinished
 * one of the peer holding the most (connection-table.ts). Measured on Node 20 (the `serve` process, /proc VmRSS): a
 * silent TCP connection costs ~13 KiB, an idle TLS one ~48 KiB, a half-sent ClientHello ~58 KiB.
 * Holding 1024 such connections (a third of each), five times over, took the process from 71 to a
 * 150 MiB high-water mark (freed TLS memory is reused, not all returned), which leaves the webhook's
 * 256Mi limit ~100 MiB for its reviews; 2048 would reach ~230 MiB. The API server needs a handful.
 */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/**
 * The release-memory addon (native/release-memory.c), found like the agent's helper: built here, else
 * prebuilt for this machine. Without it both commands work, but `serve`'s memory freed after a
 * connection flood stays with malloc, and the agent's RSS keeps the code pages start-up touched.
 */
export const RELEASE_MEMORY_ADDON_CANDIDATES: readonly string[] =
  nativeFiles('release-memory.node');
/**
 * How often `serve` looks whether to give freed memory back, and after how many closed connections it
 * does: a flood closes thousands a second, an API server a few a minute, so a quiet webhook never trims.
 */
export const FREED_MEMORY_CHECK_MS = 2_000;
export const FREED_MEMORY_AFTER_CLOSES = 256;
/** Most --max-connections takes: beyond it a replica runs out of memory or descriptors first. */
export const MAX_CONNECTIONS_LIMIT = 65_536;
/**
 * Connections one peer address may hold: a quarter of the default bound, so that a single pod can never
 * hold most of it. Generous for the API server: it keeps at most 25 idle connections per webhook host
 * (per API server process), and on managed clusters several API servers reach the webhook from the same
 * few addresses (konnectivity agents, NAT). A peer at its share that opens another gives up one of its
 * own, so even a client sharing an address with an attacker gets its new connection.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_PEER = 256;
/**
 * AdmissionReview warnings: the API server prints each one to the user (kubectl shows them). Its
 * documentation asks for at most 120 characters each; its warning recorder
 * (k8s.io/apiserver/pkg/endpoints/filters/warning.go) cuts every warning to 256 runes once a request's
 * warnings pass 4096 runes, and drops a warning with a control character. At most 10 warnings of 120
 * characters, plus the "… and N more" line, stay far below 4096, so the API server never cuts ours.
 */
export const WARNING_MAX_CHARS = 120;
export const WARNING_MAX_COUNT = 10;
/**
 * Longest piece of request input (pod name, uid, an unsupported apiVersion, a path, a bad annotation
 * value) echoed into a log line, an error answer or the status annotation: real values are under 253
 * characters (the longest Kubernetes name).
 */
export const ECHO_MAX_CHARS = 256;

// ---- Webhook: sizes of what a patch may add to a pod ----------------------------------------------------

/**
 * The largest pod we patch, estimated as the pod's JSON plus twice the patch's JSON (the API server also
 * records every field we add in managedFields). A pod over it is allowed unchanged, with a warning.
 *
 * The real bound on a stored object is etcd's request limit, 1.5 MiB by default (`--max-request-bytes`,
 * etcd docs "System limits"); the API server takes request bodies up to twice that, 3 MiB, because JSON
 * shrinks when it is stored as protobuf (`MaxRequestBodyBytes: 3 * 1024 * 1024` and its comment in
 * k8s.io/apiserver/pkg/server/config.go). Measuring JSON against etcd's limit keeps a margin for what
 * does not shrink (managedFields are JSON inside the protobuf): a pod we patch never fails to be stored
 * because of us. Real pods are a few KiB; a pod of 10,000 minimal containers (391 KB) would get 11 MB.
 *
 * It also bounds the response: the patch is at most half of it, 1 MiB once base64-encoded. The API
 * server's webhook client reads a response whole with no limit of its own (client-go
 * rest/request.go transformResponse: io.ReadAll), so this bound is ours to keep.
 */
export const MAX_PATCHED_POD_BYTES = 1536 * 1024;
/**
 * The API server refuses an object whose annotations (keys plus values, in bytes) pass 256 KiB
 * (TotalAnnotationSizeLimitB in k8s.io/apimachinery/pkg/api/validation/objectmeta.go). The status
 * annotation is written only where the pod's other annotations leave room for it.
 */
export const TOTAL_ANNOTATIONS_MAX_BYTES = 256 * 1024;
/**
 * Longest status annotation we write, whatever room is left: a full status is ~130 bytes per container,
 * so this holds ~250 containers; beyond it a short form (counts only) is written. The rest of the 256 KiB
 * stays for the pod's owner and other tools.
 */
export const STATUS_MAX_BYTES = 32 * 1024;

// ---- Node agent -------------------------------------------------------------------------------------

/** Where lxcfs itself mounts: private to the agent; pods only ever see the anchor's binds of it. */
export const DEFAULT_FUSE_MOUNT = '/run/lxcfs-webhook/fuse';
/** lxcfs writes and locks its pidfile next to the FUSE mountpoint, never on the shared /run/lxcfs.pid. */
export const LXCFS_PIDFILE_NAME = 'lxcfs.pid';
export const DEFAULT_LXCFS_BIN = 'lxcfs';
/**
 * lxcfs' flags are chosen by the agent for the lxcfs version it finds (src/agent/lxcfs/version.ts), with
 * a per-container load average (`-l`) unless turned off: its cost is a rescan of every tracked
 * container's tasks every 5 s.
 */
export const DEFAULT_LXCFS_LOADAVG = true;
export const DEFAULT_PROC = '/proc';
/**
 * The native remount helper of this package: the one built here (native/build, by `npm run build` where a C
 * compiler exists, or `make -C native`), else the prebuilt one for this machine (native/prebuilt/linux-x64
 * and linux-arm64 ship in the npm package, statically linked). When neither exists the agent says how to get one.
 */
export const REMOUNT_HELPER_CANDIDATES: readonly string[] = nativeFiles('lxcfs-remount');
export const DEFAULT_REMOUNT_HELPER =
  REMOUNT_HELPER_CANDIDATES.find((p) => existsSync(p)) ?? REMOUNT_HELPER_CANDIDATES[0]!;
/** Mount options of the anchor tmpfs: it holds only directories and binds (and the state tmpfs). */
export const ANCHOR_TMPFS_OPTIONS = 'mode=0755,size=8m';
/**
 * The agent's memory of injected targets outlives the agent process on a tmpfs of its own under the
 * anchor: nothing it writes can fill the anchor, and nothing else fills its space unnoticed. Sized for
 * two copies (the file and the one replacing it) of the largest state the limits below allow.
 */
export const AGENT_STATE_DIR = '.lxcfs-webhook-agent';
export const AGENT_STATE_FILE = 'state.json';
export const STATE_TMPFS_OPTIONS = 'mode=0700,size=4m';
/** Where agents before the state tmpfs kept it, directly on the anchor: read once, then removed. */
export const LEGACY_AGENT_STATE_FILE = '.lxcfs-webhook-agent.json';
/**
 * Bounds on what one node or one container costs the agent. A container (a cgroup) with more mount
 * namespaces holding lxcfs files than this has only its oldest ones repaired and remembered (others are
 * copies it made itself); a node remembers at most this many namespaces (about 0.7 KB each in the state).
 */
export const MAX_NAMESPACES_PER_CONTAINER = 16;
export const MAX_REMEMBERED_NAMESPACES = 2_048;
/**
 * A target whose remount failed is retried one --sweep-interval later (the `retry` sweep), then after
 * twice that, doubling while it keeps failing up to this cap (a new lxcfs retries it at once); one the
 * helper refused (not a file of ours: a symlink, a FIFO, a directory, another filesystem) after the
 * longer backoff. Each is logged once, not at every sweep.
 */
export const REPAIR_RETRY_MAX_MS = 300_000;
export const REFUSED_TARGET_BACKOFF = { firstMs: 300_000, maxMs: 3_600_000 } as const;

/** How often every container is looked at while the agent has no complete notifications (it polls). */
export const DEFAULT_SWEEP_INTERVAL_MS = 10_000;
/**
 * Notifications (the native helper's `watch` of mount tables and `cgroups` of the cgroup hierarchy):
 * sweeps run when something changed, and read only the mount tables that changed. Off, the agent polls
 * every --sweep-interval and every sweep reads every table (the escape hatch, and the bench's fallback).
 */
export const DEFAULT_MOUNT_NOTIFICATIONS = true;
/**
 * With notifications, every container is still looked at this often, every mount table read: a safety
 * net, so a change a notification missed is found late rather than never.
 */
export const DEFAULT_FULL_SWEEP_INTERVAL_MS = 300_000;
/**
 * How often the agent's event-loop delay metrics (nodejs_eventloop_lag_*) sample the loop. prom-client's
 * 10 ms wakes an idle agent 100 times a second: measured 4.6 ms CPU/s of its 6 ms/s standing cost.
 */
export const AGENT_EVENT_LOOP_PRECISION_MS = 1_000;
/**
 * Node flags the agent runs with (image entrypoint, tests, benchmark). Its work comes in bursts (a
 * sweep, a recovery) between long idle stretches: a young generation capped at 1 MiB keeps what a burst
 * allocates from growing it; V8's lite mode (no optimising compiler, no code generated at run time)
 * keeps ~3 MiB less heap and touches less of the node binary, and the agent's sweeps, bound by system
 * calls and helpers, measured no slower with it (bench/agent.ts, the flags phase). It turns WebAssembly
 * off, which the agent does not use (Node 20 says so on stderr unless also given --no-expose-wasm).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--lite-mode'];
/**
 * After start-up or a recovery (a sweep of every container), the agent pages out its code once this many
 * sweep intervals pass without another: the retry sweeps that may follow one are over by then.
 */
export const CODE_RELEASE_QUIET_SWEEP_INTERVALS = 3;
/** A notified change is swept this long after it, so a burst of them (a container's set-up) costs one sweep. */
export const CHANGE_SETTLE_MS = 100;
/**
 * Change sweeps start at least this far apart: on a node whose mount tables and cgroups change all the
 * time, the agent sweeps at most once a second (each sweep lists every process's namespace).
 */
export const CHANGE_SWEEP_GAP_MS = 1_000;
/**
 * A new cgroup is made before the container's processes and mount namespace exist: sweeps this long
 * after it find the namespace, from then on its mount changes are notified. A runtime sets a container
 * up within the first; the others catch a slow one.
 */
export const NEW_CGROUP_SWEEPS_MS: readonly number[] = [250, 2_500, 10_000];
/** The mount watcher is restarted after this delay, doubling while it keeps dying; sweeps read everything meanwhile. */
export const MOUNT_WATCH_RESTART_BACKOFF = { firstMs: 1_000, maxMs: 300_000 } as const;
/** A watcher that does not answer a ping within this is killed (and restarted after the backoff). */
export const MOUNT_WATCH_PING_TIMEOUT_MS = 1_000;
/** How often lxcfs is read through FUSE, and how long one read may take before it counts as a hang. */
export const DEFAULT_PROBE_INTERVAL_MS = 5_000;
export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;
/** lxcfs failing every probe for this long is killed and restarted. */
export const DEFAULT_HANG_GRACE_MS = 15_000;
/**
 * Restart backoff: first delay, doubling up to the cap while lxcfs fails to come up; reset once it has
 * answered a probe. An lxcfs that served and was then killed comes back at once however often that
 * happens: every second it is down, every container reads errors.
 */
export const LXCFS_RESTART_BACKOFF = { firstMs: 100, maxMs: 30_000 } as const;
/** How long lxcfs may take to mount, and to exit after SIGTERM before it gets SIGKILL. */
export const LXCFS_START_TIMEOUT_MS = 10_000;
export const LXCFS_STOP_TIMEOUT_MS = 10_000;
/**
 * An lxcfs that has not exited this long after SIGKILL (a thread stuck in a FUSE request, <defunct> in
 * D state) has its FUSE connection aborted; one still there this long after that is left behind and
 * replaced. The FUSE control filesystem is mounted next to the FUSE mountpoint when none is.
 */
export const LXCFS_KILL_GRACE_MS = 2_000;
export const FUSECTL_DIR_NAME = 'fusectl';
/** Remount helpers run at once, namespaces per helper run, and how long one run may take. */
export const REMOUNT_PARALLELISM = 4;
export const REMOUNT_BATCH_SIZE = 25;
export const NATIVE_HELPER_TIMEOUT_MS = 5_000;
/** Containers whose lxcfs files are read one byte each by `check node` and after each agent sweep. */
export const PEEK_SAMPLE_SIZE = 10;
/** Containers per helper run when many are read (`check node --all`), and runs at once. */
export const PEEK_BATCH_SIZE = 25;
export const PEEK_PARALLELISM = 2;
/** Broken containers `check node` lists one per line; more would not fit a screen. */
export const CHECK_MAX_LISTED_CONTAINERS = 15;

// ---- CLI --------------------------------------------------------------------------------------------

/** Longest duration any flag takes (`60m`): more is a typo, and Node timers overflow at about 24 days. */
export const MAX_DURATION_MS = 60 * 60 * 1000;
/** Width `--help` fits in. */
export const HELP_WIDTH = 100;

// ---- Outages: fail-closed namespaces, start priority, audit ------------------------------------------

/**
 * Value of the namespace label (NAMESPACE_LABEL.key) that selects the fail-closed webhook entry: pods
 * there are refused while the webhook cannot be reached, instead of starting without lxcfs.
 */
export const NAMESPACE_LABEL_REQUIRED = 'required';
/** Namespaces no webhook entry ever selects, so a dead webhook can never block the control plane or its own recovery. */
export const SYSTEM_NAMESPACES: readonly string[] = [
  'kube-system',
  'kube-public',
  'kube-node-lease',
];
/** Pod Security levels that reject hostPath volumes: namespaces enforcing them are never selected. */
export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
export const HOSTPATH_REJECTING_LEVELS: readonly string[] = ['baseline', 'restricted'];
/** Label the API server sets on every namespace to its name (Kubernetes >= 1.22); selectors exclude by it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Start priority of the webhook Deployment (the agent DaemonSet has system-node-critical). */
export const WEBHOOK_PRIORITY_CLASS = 'system-cluster-critical';
export const AGENT_PRIORITY_CLASS = 'system-node-critical';
