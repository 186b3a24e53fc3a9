// Prometheus metrics of `serve` (see plumbing/metrics.ts for the style). Every name starts with
// `lxcfs_webhook_`; label values are the stable result and reason strings of the review log, so the
// label sets stay small.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { TlsProblemReason } from '../errors.js';
import { createRegistry } from '../plumbing/metrics.js';
import type { EvictablePhase, LimitReason } from './connection-table.js';
import type { ReviewLog } from './review.js';

const PREFIX = 'lxcfs_webhook_';

/**
 * Seconds. A review takes well under a millisecond here, so the buckets start at 0.5 ms; Kubernetes'
 * own webhook latency histogram starts at 5 ms and says nothing below that.
 */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** How one HTTP request on the webhook port ended: `result` from the review log, or `rejected`/`error`. */
export interface RequestOutcome {
  result: ReviewLog['result'] | 'error';
  /** Pod skip or ignore reason, or why the request was rejected; empty when there is none. */
  reason: string;
}

export class WebhookMetrics {
  readonly registry = createRegistry(PREFIX);

  private readonly requests = new Counter({
    name: `${PREFIX}requests_total`,
    help: 'Requests on the webhook port, by result (injected, unchanged, skipped, ignored, rejected, error) and reason.',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  });

  private readonly patches = new Counter({
    name: `${PREFIX}patches_total`,
    help: 'Reviews answered with a JSON patch.',
    registers: [this.registry],
  });

  private readonly fileSkips = new Counter({
    name: `${PREFIX}file_skips_total`,
    help: 'Files not mounted into a container of an injected pod, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly podSkips = new Counter({
    name: `${PREFIX}pod_skips_total`,
    help: 'Pods left unchanged as a whole, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly duration = new Histogram({
    name: `${PREFIX}request_duration_seconds`,
    help: "Time from a request's arrival to its answer, body reading included.",
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  private readonly tlsReloads = new Counter({
    name: `${PREFIX}tls_reloads_total`,
    help: 'Changed TLS files seen, by result: loaded, or rejected (the current certificate stays), with the reason it was rejected.',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  });

  private readonly certificateExpiry = new Gauge({
    name: `${PREFIX}tls_certificate_expiry_timestamp_seconds`,
    help: 'When the serving certificate in use expires (Unix time): alert well before it.',
    registers: [this.registry],
  });

  /** The certificate in use's notAfter, for the seconds-left gauge. */
  private notAfterMs = 0;

  private readonly certificateSecondsLeft = new Gauge({
    name: `${PREFIX}certificate_expiry_seconds`,
    help: 'Seconds until the serving certificate in use expires (negative once it has).',
    registers: [this.registry],
    collect: () => {
      this.certificateSecondsLeft.set(Math.round((this.notAfterMs - Date.now()) / 1000));
    },
  });

  /** Set by the certificate watcher: whether the files hold a pair that is refused. */
  private tlsFilesRefused: () => boolean = () => false;

  private readonly tlsFilesRejected = new Gauge({
    name: `${PREFIX}tls_files_rejected`,
    help: '1 while the certificate files hold a pair that is not served (see the log and tls_reloads_total), 0 when they hold the one in use.',
    registers: [this.registry],
    collect: () => {
      this.tlsFilesRejected.set(this.tlsFilesRefused() ? 1 : 0);
    },
  });

  private readonly refusedConnections = new Counter({
    name: `${PREFIX}connections_refused_total`,
    help:
      'Connections closed at once, by reason: peer-limit or max-connections (every connection held ' +
      'was answering a request), client-certificate (no valid client certificate with --client-ca).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly evictedConnections = new Counter({
    name: `${PREFIX}connections_evicted_total`,
    help:
      'Connections closed to make room for a new one, by reason (peer-limit: its peer held ' +
      '--max-connections-per-peer; max-connections: the port was full and its peer held the most) and by ' +
      'phase (idle keep-alive, or unfinished: in its handshake or still sending its request).',
    labelNames: ['reason', 'phase'] as const,
    registers: [this.registry],
  });

  /** Set by the server: the number of connections open right now, TLS handshakes included. */
  private connectionCount: () => Promise<number> = () => Promise.resolve(0);

  private readonly openConnections = new Gauge({
    name: `${PREFIX}open_connections`,
    help: 'Connections open on the webhook port, including those still in their TLS handshake.',
    registers: [this.registry],
    // Read at scrape time from the server itself, so it cannot drift from the real count.
    collect: async () => {
      this.openConnections.set(await this.connectionCount());
    },
  });

  /** Set by the server: bytes of request bodies held right now (see body-budget.ts). */
  private bodyBytes: () => number = () => 0;

  private readonly requestBytesInFlight = new Gauge({
    name: `${PREFIX}request_bytes_in_flight`,
    help: 'Bytes of request bodies held in memory now, counted as --max-request-bytes-in-flight counts them.',
    registers: [this.registry],
    collect: () => {
      this.requestBytesInFlight.set(this.bodyBytes());
    },
  });

  /** One request on the webhook port; `log` is present when the body was an AdmissionReview. */
  recordRequest(outcome: RequestOutcome, seconds: number, log?: ReviewLog): void {
    this.requests.inc({ result: outcome.result, reason: outcome.reason });
    this.duration.observe(seconds);
    if (!log) return;
    if ((log.patchOperations ?? 0) > 0) this.patches.inc();
    if (log.result === 'skipped' && log.reason) this.podSkips.inc({ reason: log.reason });
    for (const [reason, count] of Object.entries(log.fileSkips ?? {}))
      this.fileSkips.inc({ reason }, count);
  }

  recordCertificate(pair: { notAfter: Date }): void {
    this.notAfterMs = pair.notAfter.getTime();
    this.certificateExpiry.set(this.notAfterMs / 1000);
  }

  recordTlsReload(result: 'loaded' | 'rejected', reason: TlsProblemReason | '' = ''): void {
    this.tlsReloads.inc({ result, reason });
  }

  watchTlsFiles(refusing: () => boolean): void {
    this.tlsFilesRefused = refusing;
  }

  recordRefusedConnection(reason: LimitReason | 'client-certificate'): void {
    this.refusedConnections.inc({ reason });
  }

  recordEvictedConnection(reason: LimitReason, phase: EvictablePhase): void {
    this.evictedConnections.inc({ reason, phase });
  }

  countConnections(count: () => Promise<number>): void {
    this.connectionCount = count;
  }

  countBodyBytes(count: () => number): void {
    this.bodyBytes = count;
  }
}
