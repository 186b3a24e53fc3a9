// `lxcfs-webhook serve`: runs the admission webhook until SIGTERM or SIGINT.
//
// Without --tls-* flags it makes a localhost certificate in memory and prints a command that sends a
// sample review, so it can be tried on any machine. On SIGTERM it reports not-ready at once, keeps
// answering (with `Connection: close`) for --shutdown-grace while the API server moves to
// other replicas, then closes and exits 0. A second signal ends the grace period early. Ctrl-C
// (SIGINT) in that local demo stops at once: there is no load balancer to drain for.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWebhook, type RunningWebhook, type WebhookConfig } from '../admission/webhook.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_TLS_SERVER_NAME,
  DEFAULT_WEBHOOK_HEALTH_PORT,
  DEFAULT_WEBHOOK_PORT,
  MAX_CONNECTIONS_LIMIT,
  MAX_REQUEST_BYTES,
  MIN_REQUEST_BYTES,
  MUTATE_PATH,
  WEBHOOK_IN_FLIGHT_TIMEOUT_MS,
} from '../config/defaults.js';
import { asyncStdout, createLogger, type Logger } from '../log.js';
import { nextStopSignal, untilDoneOrSecondSignal } from '../plumbing/signals.js';
import type { Command } from './command.js';
import { FlagSet, helpText, withFlagName } from './flags.js';
import { podRuleFlags, settingsFrom } from './shared-flags.js';
import { byteSize, duration, hostName, integer, path, port, text } from './values.js';

const flags = new FlagSet('serve', {
  port: {
    kind: port,
    default: DEFAULT_WEBHOOK_PORT,
    help: 'HTTPS port for AdmissionReviews; 0 picks a free one',
  },
  'health-port': {
    kind: port,
    default: DEFAULT_WEBHOOK_HEALTH_PORT,
    help: 'HTTP port for /livez, /readyz and /metrics; 0 picks a free one',
  },
  address: {
    kind: text('ADDR', 'an IP address or host name (leave the flag out for all interfaces)'),
    help: 'address both ports listen on; all interfaces when not given',
  },
  'tls-cert': {
    kind: path('FILE'),
    help: 'PEM certificate chain, leaf first; reloaded when the file changes',
  },
  'tls-key': {
    kind: path('FILE'),
    help:
      'PEM private key of that certificate; reloaded when the file changes. With neither: an in-memory ' +
      'self-signed certificate for localhost, to try it out',
  },
  'tls-server-name': {
    kind: hostName,
    default: DEFAULT_TLS_SERVER_NAME,
    help:
      'the name the API server checks the certificate for: <service>.<namespace>.svc of the webhook ' +
      "configuration's Service (or the host of its url); with --tls-cert, a certificate not for it is not served",
  },
  ...podRuleFlags,
  'max-request-bytes': {
    kind: byteSize(MIN_REQUEST_BYTES, MAX_REQUEST_BYTES),
    default: DEFAULT_MAX_REQUEST_BYTES,
    help: 'largest request body read, in bytes or with a Ki or Mi suffix',
  },
  'max-request-bytes-in-flight': {
    kind: byteSize(MIN_REQUEST_BYTES, MAX_REQUEST_BYTES),
    default: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
    help:
      'request bodies held in memory at once, all connections together; a body that does not fit is ' +
      'answered 503 unread (the API server applies failurePolicy); at least --max-request-bytes',
  },
  'max-connections': {
    kind: integer(1, MAX_CONNECTIONS_LIMIT, 'connections'),
    default: DEFAULT_MAX_CONNECTIONS,
    help:
      'connections held at once on --port (the default fits the 256Mi memory limit); beyond it a new ' +
      'connection takes the place of an idle or unfinished one of the address holding the most',
  },
  'max-connections-per-peer': {
    kind: integer(1, MAX_CONNECTIONS_LIMIT, 'connections'),
    default: DEFAULT_MAX_CONNECTIONS_PER_PEER,
    help:
      'connections one client address may hold on --port; beyond it its new connection takes the ' +
      'place of one of its own',
  },
  'client-ca': {
    kind: path('FILE'),
    help:
      'PEM CA bundle: only clients with a certificate it signed (the API server, given one in its ' +
      "admission configuration's kubeConfigFile) complete the TLS handshake; read at start-up",
  },
  'shutdown-grace': {
    kind: duration(0),
    default: DEFAULT_SHUTDOWN_GRACE_MS,
    help:
      'how long to keep answering after SIGTERM, not ready and with Connection: close; plus ' +
      `${WEBHOOK_IN_FLIGHT_TIMEOUT_MS / 1000}s it must fit in the pod's terminationGracePeriodSeconds`,
  },
});

const USAGE = helpText(flags, {
  synopsis: 'serve [flags]',
  about: `Runs the mutating admission webhook: AdmissionReviews on HTTPS POST ${MUTATE_PATH} (--port), and
/livez, /readyz and /metrics on plain HTTP (--health-port). Logs are JSON lines on stdout.`,
  footer: `Durations: 500ms, 10s, 2m, or a bare number of seconds.
Environment: LOG_LEVEL (info; debug shows malformed HTTP requests).`,
});

interface ServeFlags {
  config: Omit<WebhookConfig, 'tls' | 'logger'>;
  tlsFiles?: { certFile: string; keyFile: string };
  tlsServerName: string;
  shutdownGraceMs: number;
}

function parseServeFlags(args: string[]): ServeFlags {
  const { values } = flags.parse(args);
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const [given, missing] =
      certFile === undefined ? ['--tls-key', '--tls-cert'] : ['--tls-cert', '--tls-key'];
    throw flags.usageError(
      `${given} is set but ${missing} is not; pass both, or neither for an in-memory localhost certificate`,
    );
  }
  if (values['max-request-bytes-in-flight'] < values['max-request-bytes']) {
    throw flags.usageError(
      `--max-request-bytes-in-flight (${values['max-request-bytes-in-flight']}) is below --max-request-bytes ` +
        `(${values['max-request-bytes']}): the largest review allowed could never be read; raise it or lower --max-request-bytes`,
    );
  }
  if (values.port === values['health-port'] && values.port !== 0) {
    throw flags.usageError(
      `--port and --health-port are both ${values.port}; give them different ports`,
    );
  }
  return {
    config: {
      port: values.port,
      healthPort: values['health-port'],
      address: values.address,
      settings: settingsFrom(values),
      maxRequestBytes: values['max-request-bytes'],
      maxRequestBytesInFlight: values['max-request-bytes-in-flight'],
      maxConnections: values['max-connections'],
      maxConnectionsPerPeer: values['max-connections-per-peer'],
      clientCaFile: values['client-ca'],
    },
    tlsFiles: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    tlsServerName: values['tls-server-name'],
    shutdownGraceMs: values['shutdown-grace'],
  };
}

/** The flag of each WebhookConfig setting the webhook's errors can name. */
const FLAG_OF_SETTING: Record<string, string> = {
  certFile: '--tls-cert',
  keyFile: '--tls-key',
  serverName: '--tls-server-name',
  clientCaFile: '--client-ca',
  port: '--port',
  healthPort: '--health-port',
};

/** Shipped in the package (package.json `files`), so the printed command works from any directory. */
const SAMPLE_REVIEW = fileURLToPath(
  new URL('../../../examples/admission-review.json', import.meta.url),
);

const shellQuote = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

/** What to paste to try the in-memory webhook: for people, so on stderr and apart from the JSON logs. */
function tryItBanner(address: string | undefined, port: number, healthPort: number): string {
  const wildcard = address === undefined || address === '0.0.0.0' || address === '::';
  const host = wildcard ? 'localhost' : address.includes(':') ? `[${address}]` : address;
  // Absolute: the banner is read and pasted in other directories and terminals than serve runs in.
  const send = `curl -sk -H 'Content-Type: application/json' --data ${shellQuote(`@${SAMPLE_REVIEW}`)} https://${host}:${port}${MUTATE_PATH}`;
  return [
    '',
    'lxcfs-webhook serve is answering with an in-memory, self-signed certificate for localhost.',
    '',
    'Send it a sample AdmissionReview (a pod with CPU and memory limits):',
    '',
    `  ${send}`,
    '',
    'See the JSON patch it answers with:',
    '',
    `  ${send} | jq -r .response.patch | base64 -d | jq`,
    ...(existsSync(SAMPLE_REVIEW)
      ? []
      : ['', `(${SAMPLE_REVIEW} is missing: reinstall the package.)`]),
    '',
    `Health and metrics: http://${host}:${healthPort}/readyz and http://${host}:${healthPort}/metrics`,
    'For a cluster, pass --tls-cert and --tls-key with a certificate the API server trusts. Ctrl-C stops.',
    '',
  ].join('\n');
}

async function drainAndStop(
  webhook: RunningWebhook,
  signal: NodeJS.Signals,
  graceMs: number,
  logger: Logger,
): Promise<void> {
  webhook.startDraining();
  logger.info(
    { signal, graceSeconds: graceMs / 1000 },
    'shutting down: not ready, still answering with Connection: close until the grace period ends',
  );
  // Unreferenced: once a second signal ends the grace, the timer must not keep the process alive.
  const early = await untilDoneOrSecondSignal(sleep(graceMs, undefined, { ref: false }));
  if (early) logger.info({ signal: early }, 'second signal: ending the grace period now');
  await webhook.stop();
  logger.info('stopped');
}

async function run(options: ServeFlags): Promise<number> {
  const logger = createLogger('webhook', undefined, asyncStdout());
  // Loaded only when used: the X.509 library costs ~25 MB of memory that a production pod never needs.
  const local = options.tlsFiles
    ? undefined
    : await (await import('../admission/self-signed.js')).localhostCertificate();
  const tls = options.tlsFiles
    ? { files: options.tlsFiles, serverName: options.tlsServerName }
    : { keyPair: local!.keyPair };
  // Handlers go in before listening: a SIGTERM right after start-up still drains.
  const firstSignal = nextStopSignal();
  const webhook = await startWebhook({ ...options.config, tls, logger }).catch((err: unknown) => {
    firstSignal.cancel();
    throw withFlagName(err, FLAG_OF_SETTING);
  });
  const {
    settings,
    maxRequestBytes,
    maxRequestBytesInFlight,
    maxConnections,
    maxConnectionsPerPeer,
    clientCaFile,
    address,
  } = options.config;
  const certificate = webhook.keyPair();
  logger.info(
    {
      port: webhook.port,
      healthPort: webhook.healthPort,
      address: address ?? 'all interfaces',
      tls: options.tlsFiles ?? 'in-memory self-signed certificate for localhost',
      ...(options.tlsFiles ? { tlsServerName: options.tlsServerName } : {}),
      fingerprint256: certificate.fingerprint256,
      notAfter: certificate.notAfter.toISOString(),
      lxcfsRoot: settings.lxcfsRoot,
      files: settings.files,
      maxRequestBytes,
      maxRequestBytesInFlight,
      maxConnections,
      maxConnectionsPerPeer,
      clientCa: clientCaFile ?? 'none: no client certificate asked for',
      shutdownGraceSeconds: options.shutdownGraceMs / 1000,
      node: process.version,
    },
    'serving',
  );
  if (local) process.stderr.write(tryItBanner(address, webhook.port, webhook.healthPort));

  const signal = await firstSignal.signal;
  firstSignal.cancel();
  await drainAndStop(
    webhook,
    signal,
    graceFor(signal, local !== undefined, options.shutdownGraceMs),
    logger,
  );
  return 0;
}

/**
 * The drain after the first stop signal: --shutdown-grace, except for Ctrl-C (SIGINT) in the local demo
 * (no --tls-* flags), where no API server or load balancer is routing to us and a person is waiting.
 * SIGTERM always drains: that is how Kubernetes stops a pod, whatever its certificate.
 */
export function graceFor(
  signal: NodeJS.Signals,
  localDemo: boolean,
  shutdownGraceMs: number,
): number {
  return localDemo && signal === 'SIGINT' ? 0 : shutdownGraceMs;
}

export const command: Command<ServeFlags> = {
  name: 'serve',
  summary: 'run the admission webhook (HTTPS) with health and metrics endpoints',
  usage: USAGE,
  parse: parseServeFlags,
  run,
};
