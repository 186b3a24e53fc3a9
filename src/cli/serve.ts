// `lxcfs-webhook serve`: runs the admission webhook until SIGTERM or SIGINT.
//
// Without --tls-* flags it makes a localhost certificate in memory and prints a command that sends a
// sample review, so it can be tried on any machine. On SIGTERM it reports not-ready at once, keeps
// answering (with `Connection: close`) for --shutdown-grace seconds while the API server moves to
// other replicas, then closes and exits 0. A second signal ends the grace period early.
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWebhook, type RunningWebhook, type WebhookConfig } from '../admission/webhook.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_SHUTDOWN_GRACE_SECONDS,
  DEFAULT_WEBHOOK_HEALTH_PORT,
  DEFAULT_WEBHOOK_PORT,
  MUTATE_PATH,
} from '../config/defaults.js';
import { configError } from '../errors.js';
import { asyncStdout, createLogger, type Logger } from '../log.js';
import type { Command } from './command.js';
import { parseFlags, settingsFrom, settingsOptions, settingsUsage } from './flags.js';

const USAGE = `usage: lxcfs-webhook serve [flags]

Runs the mutating admission webhook: AdmissionReviews on HTTPS POST ${MUTATE_PATH} (--port), and
/livez, /readyz and /metrics on plain HTTP (--health-port). Logs are JSON lines on stdout.

flags:
  --port N              HTTPS port for AdmissionReviews (default ${DEFAULT_WEBHOOK_PORT}; 0 picks a free one)
  --health-port N       HTTP port for /livez, /readyz and /metrics (default ${DEFAULT_WEBHOOK_HEALTH_PORT}; 0 picks a free one)
  --address ADDR        address both ports listen on (default: all interfaces)
  --tls-cert FILE       PEM certificate chain, leaf first; reloaded when the file changes
  --tls-key FILE        PEM private key of that certificate; reloaded when the file changes
                        With neither: an in-memory self-signed certificate for localhost, to try it out.
${settingsUsage}
  --max-request-bytes N
                        largest request body read, in bytes or with a Ki or Mi suffix (default ${DEFAULT_MAX_REQUEST_BYTES / 1024 / 1024}Mi)
  --max-connections N   connections held at once on --port; more are refused and counted in
                        lxcfs_webhook_connections_dropped_total (default ${DEFAULT_MAX_CONNECTIONS}; fits the 256Mi memory limit)
  --shutdown-grace S    seconds to keep answering after SIGTERM, not ready and with Connection: close
                        (default ${DEFAULT_SHUTDOWN_GRACE_SECONDS}; grace + 5 must fit in the pod's terminationGracePeriodSeconds)

Environment: LOG_LEVEL (info; debug shows malformed HTTP requests).`;

interface ServeFlags {
  config: Omit<WebhookConfig, 'tls' | 'logger'>;
  tlsFiles?: { certFile: string; keyFile: string };
  shutdownGraceSeconds: number;
}

const FLAGS = {
  'port': { type: 'string' },
  'health-port': { type: 'string' },
  'address': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'max-request-bytes': { type: 'string' },
  'max-connections': { type: 'string' },
  'shutdown-grace': { type: 'string' },
  ...settingsOptions,
} as const;

function parsePort(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) throw configError(`${flag} has value "${value}"; expected a port number from 1 to 65535 (0 picks a free one)`);
  return port;
}

const MIN_REQUEST_BYTES = 64 * 1024;
const MAX_REQUEST_BYTES = 1024 * 1024 * 1024;
const SIZE_UNITS: Record<string, number> = { '': 1, 'Ki': 1024, 'Mi': 1024 * 1024 };

function parseByteSize(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+)(Ki|Mi)?$/.exec(value);
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2] ?? '']! : NaN;
  if (!(bytes >= MIN_REQUEST_BYTES && bytes <= MAX_REQUEST_BYTES)) {
    throw configError(`${flag} has value "${value}"; expected a size from 64Ki to 1024Mi, in bytes or with a Ki or Mi suffix, e.g. 8Mi`);
  }
  return bytes;
}

const MAX_CONNECTIONS_LIMIT = 65_536;

function parseCount(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const count = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!(count >= 1 && count <= MAX_CONNECTIONS_LIMIT)) {
    throw configError(`${flag} has value "${value}"; expected a whole number from 1 to ${MAX_CONNECTIONS_LIMIT}, e.g. ${DEFAULT_MAX_CONNECTIONS}`);
  }
  return count;
}

function parseSeconds(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(seconds <= 3600)) throw configError(`${flag} has value "${value}"; expected a number of seconds from 0 to 3600, e.g. 10`);
  return seconds;
}

function parseServeFlags(args: string[]): ServeFlags {
  const { values } = parseFlags('serve', { args, options: FLAGS, strict: true, allowPositionals: false });
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const [given, missing] = certFile === undefined ? ['--tls-key', '--tls-cert'] : ['--tls-cert', '--tls-key'];
    throw configError(`${given} is set but ${missing} is not; pass both, or neither for an in-memory localhost certificate`);
  }
  const port = parsePort('--port', values.port, DEFAULT_WEBHOOK_PORT);
  const healthPort = parsePort('--health-port', values['health-port'], DEFAULT_WEBHOOK_HEALTH_PORT);
  if (port === healthPort && port !== 0) {
    throw configError(`--port and --health-port are both ${port}; give them different ports`);
  }
  if (values.address === '') throw configError('--address is empty; pass an IP address or host name, or leave it out for all interfaces');
  return {
    config: {
      port,
      healthPort,
      address: values.address,
      settings: settingsFrom(values),
      maxRequestBytes: parseByteSize('--max-request-bytes', values['max-request-bytes'], DEFAULT_MAX_REQUEST_BYTES),
      maxConnections: parseCount('--max-connections', values['max-connections'], DEFAULT_MAX_CONNECTIONS),
    },
    tlsFiles: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    shutdownGraceSeconds: parseSeconds('--shutdown-grace', values['shutdown-grace'], DEFAULT_SHUTDOWN_GRACE_SECONDS),
  };
}

const SAMPLE_REVIEW = fileURLToPath(new URL('../../../examples/admission-review.json', import.meta.url));

const shellQuote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** What to paste to try the in-memory webhook: for people, so on stderr and apart from the JSON logs. */
function tryItBanner(address: string | undefined, port: number, healthPort: number): string {
  const wildcard = address === undefined || address === '0.0.0.0' || address === '::';
  const host = wildcard ? 'localhost' : address.includes(':') ? `[${address}]` : address;
  const sample = relative(process.cwd(), SAMPLE_REVIEW);
  const send = `curl -sk -H 'Content-Type: application/json' --data ${shellQuote(`@${sample}`)} https://${host}:${port}${MUTATE_PATH}`;
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
    ...(existsSync(SAMPLE_REVIEW) ? [] : ['', `(${SAMPLE_REVIEW} comes with the source repository.)`]),
    '',
    `Health and metrics: http://${host}:${healthPort}/readyz and http://${host}:${healthPort}/metrics`,
    'For a cluster, pass --tls-cert and --tls-key with a certificate the API server trusts. Ctrl-C stops.',
    '',
  ].join('\n');
}

/** Resolves at the next SIGTERM or SIGINT. Handlers stay until then, so no signal kills the process. */
function nextSignal(): { signal: Promise<NodeJS.Signals>; cancel(): void } {
  let handler: (signal: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    handler = resolve;
  });
  process.on('SIGTERM', handler).on('SIGINT', handler);
  return {
    signal,
    cancel: () => {
      process.removeListener('SIGTERM', handler).removeListener('SIGINT', handler);
    },
  };
}

async function drainAndStop(webhook: RunningWebhook, signal: NodeJS.Signals, graceSeconds: number, logger: Logger): Promise<void> {
  webhook.startDraining();
  logger.info({ signal, graceSeconds }, 'shutting down: not ready, still answering with Connection: close until the grace period ends');
  const second = nextSignal();
  const grace = new AbortController();
  const early = await Promise.race([
    sleep(graceSeconds * 1000, undefined, { signal: grace.signal }).then(() => undefined),
    second.signal,
  ]);
  grace.abort();
  if (early) logger.info({ signal: early }, 'second signal: ending the grace period now');
  await webhook.stop();
  second.cancel();
  logger.info('stopped');
}

async function run(flags: ServeFlags): Promise<number> {
  const logger = createLogger('webhook', undefined, asyncStdout());
  // Loaded only when used: the X.509 library costs ~25 MB of memory that a production pod never needs.
  const local = flags.tlsFiles ? undefined : await (await import('../admission/self-signed.js')).localhostCertificate();
  const tls = flags.tlsFiles ? { files: flags.tlsFiles } : { keyPair: local!.keyPair };
  // Handlers go in before listening: a SIGTERM right after start-up still drains.
  const firstSignal = nextSignal();
  const webhook = await startWebhook({ ...flags.config, tls, logger }).catch((err: unknown) => {
    firstSignal.cancel();
    throw err;
  });
  const { settings, maxRequestBytes, maxConnections, address } = flags.config;
  const certificate = webhook.keyPair();
  logger.info({
    port: webhook.port,
    healthPort: webhook.healthPort,
    address: address ?? 'all interfaces',
    tls: flags.tlsFiles ?? 'in-memory self-signed certificate for localhost',
    fingerprint256: certificate.fingerprint256,
    notAfter: certificate.notAfter.toISOString(),
    lxcfsRoot: settings.lxcfsRoot,
    files: settings.files,
    maxRequestBytes,
    maxConnections,
    shutdownGraceSeconds: flags.shutdownGraceSeconds,
    node: process.version,
  }, 'serving');
  if (local) process.stderr.write(tryItBanner(address, webhook.port, webhook.healthPort));

  const signal = await firstSignal.signal;
  firstSignal.cancel();
  await drainAndStop(webhook, signal, flags.shutdownGraceSeconds, logger);
  return 0;
}

export const command: Command<ServeFlags> = {
  name: 'serve',
  summary: 'run the admission webhook (HTTPS) with health and metrics endpoints',
  usage: USAGE,
  parse: parseServeFlags,
  run,
};
