// Puts the webhook together: certificate (from files, watched, or given), metrics, the HTTPS review
// server and the plain-HTTP health server. `serve` adds flags and signals on top; tests start it the
// same way in-process. Errors name WebhookConfig fields in `setting`, never flags: serve adds those.
import {
  CERT_EXPIRY_CHECK_INTERVAL_MS,
  FREED_MEMORY_AFTER_CLOSES,
  FREED_MEMORY_CHECK_MS,
  RELEASE_MEMORY_ADDON_CANDIDATES,
  WEBHOOK_IN_FLIGHT_TIMEOUT_MS,
} from '../config/defaults.js';
import type { InjectionSettings } from '../inject/settings.js';
import type { Logger } from '../log.js';
import { createHealthServer } from '../plumbing/health-server.js';
import { loadReleaseMemory, releaseFreedMemory } from '../plumbing/release-memory.js';
import { closeNow, listen } from '../plumbing/listen.js';
import { loadClientCa } from './client-ca.js';
import { WebhookMetrics } from './metrics.js';
import { createAdmissionServer, type TransportTimeouts } from './server.js';
import {
  expiresSoon,
  loadKeyPair,
  watchKeyPair,
  type KeyPair,
  type KeyPairFiles,
  type KeyPairWatcher,
} from './tls.js';

export interface WebhookConfig {
  port: number;
  healthPort: number;
  /** Bind address of both ports; all interfaces when absent. */
  address?: string;
  /**
   * Certificate files (watched and reloaded), checked at every load for `serverName`, the name the API
   * server checks; or a pair made in memory.
   */
  tls: { files: KeyPairFiles; serverName: string } | { keyPair: KeyPair };
  settings: InjectionSettings;
  maxRequestBytes: number;
  /** Request bodies held at once, all connections together; a body that does not fit gets a 503. */
  maxRequestBytesInFlight: number;
  /** Connections held at once on the webhook port; a new one takes the place of an idle or unfinished one. */
  maxConnections: number;
  /** Connections one peer address may hold on the webhook port. */
  maxConnectionsPerPeer: number;
  /** CA bundle (PEM file) client certificates must chain to; without it no client certificate is asked for. */
  clientCaFile?: string;
  logger: Logger;
  /** Transport timeouts; tests shorten them. Defaults: config/defaults.ts. */
  timeouts?: Partial<TransportTimeouts>;
  /** Backup poll of the certificate files; tests shorten it. */
  tlsPollIntervalMs?: number;
}

export interface RunningWebhook {
  /** The bound ports: differ from the configured ones when those were 0. */
  port: number;
  healthPort: number;
  metrics: WebhookMetrics;
  /** The certificate new connections get. */
  keyPair(): KeyPair;
  /** /readyz answers 503 from now on and every response says `Connection: close`. */
  startDraining(): void;
  /** Closes both ports; in-flight requests get a few seconds to finish. */
  stop(): Promise<void>;
}

export async function startWebhook(config: WebhookConfig): Promise<RunningWebhook> {
  const { logger } = config;
  const metrics = new WebhookMetrics();
  // Files are checked as they will be at every reload; a bad pair stops the start with what to fix.
  let keyPair =
    'files' in config.tls
      ? loadKeyPair(config.tls.files, { serverName: config.tls.serverName })
      : config.tls.keyPair;
  metrics.recordCertificate(keyPair);
  const warnIfExpiring = () => {
    const warning = expiresSoon(keyPair);
    if (warning)
      logger.warn(
        { notAfter: keyPair.notAfter.toISOString(), fingerprint256: keyPair.fingerprint256 },
        warning,
      );
  };
  warnIfExpiring();
  // A certificate nobody renews warns again every hour once its end is near, not only when loaded.
  const expiryCheck = setInterval(warnIfExpiring, CERT_EXPIRY_CHECK_INTERVAL_MS).unref();

  const clientCa =
    config.clientCaFile === undefined ? undefined : loadClientCa(config.clientCaFile);
  const admission = createAdmissionServer({
    keyPair,
    settings: config.settings,
    maxRequestBytes: config.maxRequestBytes,
    maxRequestBytesInFlight: config.maxRequestBytesInFlight,
    maxConnections: config.maxConnections,
    maxConnectionsPerPeer: config.maxConnectionsPerPeer,
    clientCa,
    timeouts: config.timeouts,
    metrics,
    logger,
  });
  const freed = loadReleaseMemory(RELEASE_MEMORY_ADDON_CANDIDATES);
  if (freed.addon) {
    releaseFreedMemory(admission.server, {
      trim: freed.addon.trim,
      intervalMs: FREED_MEMORY_CHECK_MS,
      afterCloses: FREED_MEMORY_AFTER_CLOSES,
      logger,
    });
  } else {
    logger.warn(
      { error: freed.problem },
      'memory freed by closed connections stays with malloc: after a connection flood RSS stays at its peak',
    );
  }
  let ready = false;
  const health = createHealthServer({
    registry: metrics.registry,
    notReadyReasons: () => (ready ? [] : ['shutting down']),
    logger,
  });

  let watcher: KeyPairWatcher | undefined;
  if ('files' in config.tls) {
    const tlsFiles = watchKeyPair({
      ...config.tls.files,
      serverName: config.tls.serverName,
      current: keyPair,
      pollIntervalMs: config.tlsPollIntervalMs,
      onReload(pair) {
        admission.useKeyPair(pair);
        keyPair = pair;
        metrics.recordTlsReload('loaded');
        metrics.recordCertificate(pair);
        logger.info(
          {
            fingerprint256: pair.fingerprint256,
            notAfter: pair.notAfter.toISOString(),
            names: pair.names,
          },
          'TLS certificate reloaded',
        );
        warnIfExpiring();
      },
      onReject(problem) {
        metrics.recordTlsReload('rejected', problem.reason);
        logger.warn(
          { reason: problem.reason, err: problem, servedFingerprint256: keyPair.fingerprint256 },
          'changed TLS files are not served; keeping the current certificate',
        );
      },
    });
    metrics.watchTlsFiles(() => tlsFiles.refusing());
    watcher = tlsFiles;
  }

  try {
    const port = await listen(admission.server, {
      port: config.port,
      address: config.address,
      what: 'HTTPS port',
      setting: 'port',
    });
    const healthPort = await listen(health, {
      port: config.healthPort,
      address: config.address,
      what: 'health port',
      setting: 'healthPort',
    }).catch(async (err: unknown) => {
      await closeNow(admission.server);
      throw err;
    });
    ready = true;
    return {
      port,
      healthPort,
      metrics,
      keyPair: () => keyPair,
      startDraining() {
        ready = false;
        admission.startDraining();
      },
      async stop() {
        ready = false;
        watcher?.close();
        clearInterval(expiryCheck);
        await Promise.all([admission.close(WEBHOOK_IN_FLIGHT_TIMEOUT_MS), closeNow(health)]);
      },
    };
  } catch (err) {
    watcher?.close();
    clearInterval(expiryCheck);
    throw err;
  }
}
