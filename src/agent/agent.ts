// The node agent: prepares the anchor, supervises lxcfs, sweeps container namespaces, serves health.
//
//   start:   anchor tmpfs → clear dead mounts → lxcfs → bind into anchor → sweep → ready
//   running: probe lxcfs; periodic sweeps; on lxcfs exit or hang: clear, restart with backoff, sweep
//   SIGTERM: lxcfs gets SIGTERM, its mounts are cleared, the anchor tmpfs (and its state file) stays
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  AGENT_STATE_FILE,
  ALLOWED_FILES,
  LXCFS_PIDFILE_NAME,
  NATIVE_HELPER_TIMEOUT_MS,
  PEEK_SAMPLE_SIZE,
  REMOUNT_BATCH_SIZE,
  REMOUNT_PARALLELISM,
} from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import type { Logger } from '../log.js';
import { inspectAnchor, prepareAnchor, readOwnMounts, type AnchorLayout } from './anchor.js';
import { startHealthServer } from './health.js';
import { createAgentMetrics } from './metrics.js';
import { planCgroupNamespace } from './cgroup-namespace.js';
import { checkMountApi } from './native.js';
import { peekContainers } from './peek.js';
import { StateFile } from './state.js';
import { Supervisor } from './supervisor.js';
import { containerFields, Sweeper, type SweepConfig } from './sweep.js';

export interface AgentOptions {
  lxcfsRoot: string;
  fuseMount: string;
  lxcfsBin: string;
  lxcfsArgs: readonly string[];
  proc: string;
  healthPort: number;
  sweepIntervalMs: number;
  remountHelper: string;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  hangGraceMs: number;
}

export interface RunningAgent {
  healthPort: number;
  stop(): Promise<void>;
}

/** Both paths resolved, and everything derived from them. */
export function agentLayout(options: Pick<AgentOptions, 'lxcfsRoot' | 'fuseMount' | 'remountHelper'>) {
  const layout: AnchorLayout = { root: resolve(options.lxcfsRoot), fuseMount: resolve(options.fuseMount), helper: resolve(options.remountHelper) };
  return {
    layout,
    pidfile: join(dirname(layout.fuseMount), LXCFS_PIDFILE_NAME),
    stateFile: join(layout.root, AGENT_STATE_FILE),
  };
}

export function sweepConfig(layout: AnchorLayout, proc: string): SweepConfig {
  return {
    proc,
    fuseMount: layout.fuseMount,
    helper: layout.helper,
    files: ALLOWED_FILES,
    remountParallelism: REMOUNT_PARALLELISM,
    remountBatchSize: REMOUNT_BATCH_SIZE,
    helperTimeoutMs: NATIVE_HELPER_TIMEOUT_MS,
  };
}

/** Conditions the agent cannot work without, each with its fix. */
async function preflight(layout: AnchorLayout, log: Logger): Promise<boolean> {
  try {
    accessSync(layout.helper, constants.X_OK);
  } catch {
    throw new LxcfsWebhookError('E_AGENT', `native helper ${layout.helper} is missing: build it with "npm run build" (make -C native) or pass --remount-helper`);
  }
  if (!existsSync('/dev/fuse')) {
    throw new LxcfsWebhookError('E_AGENT', 'no /dev/fuse: run the agent privileged (securityContext.privileged: true) on a node with the fuse module loaded');
  }
  const api = await checkMountApi(layout.helper, NATIVE_HELPER_TIMEOUT_MS);
  if (api.errno === 'EPERM') {
    throw new LxcfsWebhookError('E_AGENT', 'not allowed to mount (EPERM): run the agent privileged (securityContext.privileged: true) with hostPID: true');
  }
  if (!api.supported) {
    log.error(
      { errno: api.errno },
      'this kernel lacks the new mount API (open_tree/move_mount, Linux >= 5.2): lxcfs runs, but after an lxcfs restart running pods keep ' +
        'dead mounts and must be recreated; upgrade the kernel to have them repaired',
    );
  }
  return api.supported;
}

export async function startAgent(options: AgentOptions, log: Logger): Promise<RunningAgent> {
  const { layout, pidfile, stateFile: statePath } = agentLayout(options);
  const remountSupported = await preflight(layout, log);
  const cgroupNs = planCgroupNamespace(options.proc);
  for (const warning of cgroupNs.warnings) log.warn(warning);
  if (cgroupNs.enter) log.info({ own: cgroupNs.own, host: cgroupNs.host }, 'agent runs in a private cgroup namespace: lxcfs starts in the host\'s');
  await prepareAnchor(layout, log);

  const metrics = createAgentMetrics();
  const stateFile = new StateFile(statePath);
  const liveDev = (): string | undefined => supervisor.status().dev;
  const sweeper = new Sweeper(sweepConfig(layout, options.proc), stateFile, stateFile.load(), liveDev, remountSupported, metrics, log);
  let sweptOnce = false;
  const sweep = (trigger: string): Promise<void> =>
    sweeper.sweep(trigger).then(
      (report) => void (sweptOnce ||= report.done),
      (err: unknown) => log.error({ err: (err as Error).message, trigger }, 'sweep failed'),
    );

  const supervisor: Supervisor = new Supervisor(
    {
      layout,
      lxcfs: { bin: options.lxcfsBin, args: options.lxcfsArgs, fuseMount: layout.fuseMount, pidfile, cgroupNs },
      proc: options.proc,
      probeIntervalMs: options.probeIntervalMs,
      probeTimeoutMs: options.probeTimeoutMs,
      hangGraceMs: options.hangGraceMs,
    },
    { onMounted: (dev) => sweeper.rememberDev(dev), onUp: (restarted) => sweep(restarted ? 'lxcfs-restart' : 'start') },
    metrics,
    log,
  );
  const notReadyReasons = () => {
    const status = supervisor.status();
    if (status.dev === undefined) return ['lxcfs is not running'];
    const reasons: string[] = [];
    if (!status.answering) reasons.push('lxcfs does not answer');
    const anchor = inspectAnchor(readOwnMounts(), layout.root, status.dev);
    for (const [dir, state] of Object.entries(anchor.binds)) if (state !== 'live') reasons.push(`anchor ${dir} is ${state}`);
    if (!sweptOnce) reasons.push('first sweep not done');
    return reasons;
  };
  const health = await startHealthServer(options.healthPort, notReadyReasons, metrics.registry);
  log.info({ healthPort: health.port, anchor: layout.root, fuseMount: layout.fuseMount, remountSupported }, 'agent starting');

  try {
    await supervisor.start();
  } catch (err) {
    await supervisor.stop().catch(() => undefined);
    await health.close();
    throw err;
  }
  // Reads inside containers catch what mountinfo cannot show; one batch at a time, a hung lxcfs holds it.
  let reading = false;
  const checkReads = async (): Promise<void> => {
    if (reading) return;
    reading = true;
    try {
      const reads = await peekContainers(layout.helper, options.proc, sweeper.latestViews(), { sampleSize: PEEK_SAMPLE_SIZE, timeoutMs: options.probeTimeoutMs });
      metrics.unreadableFiles.set(reads.unreadable.length);
      metrics.filesRead.inc({ result: 'ok' }, reads.files - reads.unreadable.length);
      metrics.filesRead.inc({ result: 'failed' }, reads.unreadable.length);
      for (const failed of reads.unreadable) {
        log.warn({ ...containerFields(failed.view), target: failed.target, err: failed.error }, 'an lxcfs file cannot be read inside the container');
      }
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reading lxcfs files inside containers failed');
    } finally {
      reading = false;
    }
  };
  const sweepTimer = setInterval(() => void sweep('periodic').then(checkReads), options.sweepIntervalMs);

  return {
    healthPort: health.port,
    async stop() {
      clearInterval(sweepTimer);
      await supervisor.stop();
      await health.close();
      log.info('agent stopped');
    },
  };
}
