// The node agent's composition root: checks what it needs, prepares the anchor, and wires the rooms
// together. lxcfs/ keeps lxcfs running; repair/ finds and mends lxcfs files in containers; host/ reads
// the node. The supervisor tells the sweeper about lxcfs through `LxcfsListener`; health is computed by
// node-health.ts, the same function `check node` uses.
//
//   start:   lock the anchor (one agent per anchor) → clear dead mounts → anchor tmpfs → state tmpfs →
//            lxcfs → bind into anchor → sweep → ready
//   running: probe lxcfs (one read); sweep when a notification says something changed (a mount table,
//            a container's exit, a new cgroup), and as a safety net every full-sweep interval; poll
//            every sweep interval only while notifications are off or incomplete, and retry a repair
//            left undone a sweep interval later (sweep-schedule.ts); ping the mount watcher every
//            sweep interval, so one that stopped answering is noticed on a quiet node too;
//            reads inside containers that have a reason for one (a new container, a restart);
//            on lxcfs exit (the child's exit event) or hang: clear, restart with backoff, sweep
//   stop:    lxcfs gets SIGTERM, its mounts are cleared, the anchor and state tmpfs stay; the lock goes last
import { accessSync, constants, existsSync, statfsSync } from 'node:fs';
import {
  CHANGE_SETTLE_MS,
  CHANGE_SWEEP_GAP_MS,
  MOUNT_WATCH_PING_TIMEOUT_MS,
  MOUNT_WATCH_RESTART_BACKOFF,
  NATIVE_HELPER_TIMEOUT_MS,
  NEW_CGROUP_SWEEPS_MS,
  PEEK_SAMPLE_SIZE,
  CODE_RELEASE_QUIET_SWEEP_INTERVALS,
  RELEASE_MEMORY_ADDON_CANDIDATES,
} from '../config/defaults.js';
import { LxcfsWebhookError } from '../errors.js';
import type { Logger } from '../log.js';
import { createHealthServer } from '../plumbing/health-server.js';
import { closeNow, listen } from '../plumbing/listen.js';
import { loadReleaseMemory, releaseCodeAfterBursts } from '../plumbing/release-memory.js';
import { CgroupEvents, cgroupHierarchy } from './host/cgroup-events.js';
import { readOwnMounts } from './host/mountinfo.js';
import { MountWatch } from './host/mount-watch.js';
import { checkMountApi } from './host/native.js';
import { agentLayout, sweepConfig, type NodePaths } from './layout.js';
import {
  claimAnchorDirectory,
  inspectAnchor,
  prepareAnchor,
  prepareStateDirectory,
  type AnchorLayout,
} from './lxcfs/anchor.js';
import { AnchorLock } from './lxcfs/anchor-lock.js';
import { planCgroupNamespace } from './lxcfs/cgroup-namespace.js';
import { Supervisor } from './lxcfs/supervisor.js';
import {
  defaultLxcfsArgs,
  readLxcfsVersion,
  rejectedLxcfsArgs,
  resetsCgroupOptions,
  supportsCgroupV1,
} from './lxcfs/version.js';
import { AgentMetrics } from './metrics.js';
import { nodeProblems } from './node-health.js';
import { ContainerReads } from './repair/reads.js';
import { StateFile } from './repair/state.js';
import { SweepSchedule } from './repair/sweep-schedule.js';
import { Sweeper } from './repair/sweeper.js';

export interface AgentOptions extends NodePaths {
  lxcfsBin: string;
  /** lxcfs flags as the operator wrote them; undefined: the agent's choice for the lxcfs version it finds. */
  lxcfsArgs?: readonly string[];
  /** Part of the agent's choice: `-l`, a per-container /proc/loadavg (costs lxcfs a scan every 5 s). */
  lxcfsLoadavg: boolean;
  healthPort: number;
  /** Polls while notifications are off or incomplete; retries a repair left undone. */
  sweepIntervalMs: number;
  /** The safety net: every container looked at, every mount table read. */
  fullSweepIntervalMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  hangGraceMs: number;
  /**
   * Watch mount tables and the cgroup hierarchy, so sweeps run when something changed and read only
   * what did (off: poll every sweep interval, every sweep reading every table).
   */
  mountNotifications: boolean;
}

export interface RunningAgent {
  healthPort: number;
  /** Stops lxcfs cleanly and closes the health port. */
  stop(): Promise<void>;
  /** During stop(): kill lxcfs now instead of waiting for it to exit. */
  hurry(): void;
}

/** Conditions the agent cannot work without, each with its fix. */
async function preflight(layout: AnchorLayout, log: Logger): Promise<boolean> {
  try {
    accessSync(layout.helper, constants.X_OK);
  } catch {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `native helper ${layout.helper} is missing: the package carries it prebuilt for linux x64 and arm64; ` +
        'elsewhere build it with make and a C compiler (make -C native, in the package or a clone) or give the agent its path',
      { setting: 'helper' },
    );
  }
  if (!existsSync('/dev/fuse')) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      'no /dev/fuse: run the agent privileged (securityContext.privileged: true) on a node with the fuse module loaded',
    );
  }
  const api = await checkMountApi(layout.helper, NATIVE_HELPER_TIMEOUT_MS);
  if (api.errno === 'EPERM') {
    throw new LxcfsWebhookError(
      'E_AGENT',
      'not allowed to mount (EPERM): run the agent privileged (securityContext.privileged: true) with hostPID: true',
    );
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

/**
 * The anchor lock, taken before anything is touched and taken again should its holder die (someone
 * killed the helper). `problem()` says why it is not held, for /readyz.
 */
async function holdAnchorLock(layout: AnchorLayout, log: Logger) {
  let lock: AnchorLock;
  let problem: string | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;
  const lost = () => {
    problem = `the lock on the anchor ${layout.root} was lost (its holder process exited): taking it again`;
    log.error({ anchor: layout.root }, problem);
    const takeAgain = () => {
      if (stopped) return;
      AnchorLock.take(layout.helper, layout.root, lost).then(
        (taken) => {
          lock = taken;
          problem = undefined;
          log.info({ anchor: layout.root, holder: taken.pid }, 'anchor lock taken again');
        },
        (err: unknown) => {
          problem = (err as Error).message;
          retry = setTimeout(takeAgain, 1000);
        },
      );
    };
    retry = setTimeout(takeAgain, 0);
  };
  lock = await AnchorLock.take(layout.helper, layout.root, lost);
  return {
    again: () => lock.again(),
    problem: () => problem,
    async release() {
      stopped = true;
      clearTimeout(retry);
      await lock.release();
    },
  };
}

/** What tells the agent about changes, when notifications are on. */
function notificationSources(
  options: AgentOptions,
  helper: string,
  log: Logger,
  listener: { changed(): void; cgroupCreated(): void; coverageChanged(): void },
): { watch?: MountWatch; cgroups?: CgroupEvents } {
  if (!options.mountNotifications) return {};
  const watch = new MountWatch(
    { helper, proc: options.proc, backoff: MOUNT_WATCH_RESTART_BACKOFF },
    log,
    listener,
  );
  const root = cgroupHierarchy();
  if (root === undefined) {
    log.warn(
      "no cgroup hierarchy at /sys/fs/cgroup (neither cgroup v2 nor v1's memory controller): new containers are found by polling every --sweep-interval; mount the host's /sys/fs/cgroup into the agent",
    );
    return { watch };
  }
  const cgroups = new CgroupEvents(
    { helper, root, backoff: MOUNT_WATCH_RESTART_BACKOFF },
    listener,
    log,
  );
  return { watch, cgroups };
}

/**
 * Start-up and a recovery read every container and touch code a quiet agent does not run again: its
 * pages are given back once the agent has been quiet a few sweep intervals (plumbing/release-memory.ts).
 */
function codePagesRelease(sweepIntervalMs: number, log: Logger) {
  const loaded = loadReleaseMemory(RELEASE_MEMORY_ADDON_CANDIDATES);
  if (!loaded.addon) {
    log.warn(
      { error: loaded.problem },
      'code pages used only at start-up stay in the RSS: the agent works, with ~30 MiB more resident memory',
    );
    return { burstOver: () => undefined, stop: () => undefined };
  }
  return releaseCodeAfterBursts({
    pageOutCode: loaded.addon.pageOutCode,
    quietMs: sweepIntervalMs * CODE_RELEASE_QUIET_SWEEP_INTERVALS,
    logger: log,
  });
}

/** statfs(2)'s magic number of a cgroup2 filesystem. */
const CGROUP2_SUPER_MAGIC = 0x63677270;

function isCgroup2(path: string): boolean {
  try {
    return statfsSync(path).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * The flags lxcfs starts with: the operator's, unless one would make this lxcfs exit at once, or the
 * agent's choice for the version found. An lxcfs that would serve the node's values on this node's
 * cgroup layout stops the agent; a version known to clear the node's cgroup2 options is logged.
 */
function lxcfsArgsFor(
  options: AgentOptions,
  log: Logger,
  cgroupRoot = '/sys/fs/cgroup',
): readonly string[] {
  const version = readLxcfsVersion(options.lxcfsBin, NATIVE_HELPER_TIMEOUT_MS);
  if (version === undefined)
    log.warn(
      { lxcfsBin: options.lxcfsBin },
      'cannot read `lxcfs --version`: lxcfs starts with the flags every release accepts',
    );
  if (version !== undefined && !supportsCgroupV1(version) && !isCgroup2(cgroupRoot)) {
    throw new LxcfsWebhookError(
      'E_AGENT',
      `lxcfs ${version.text} supports cgroup v2 only, and ${cgroupRoot} on this node is cgroup v1 or hybrid: it would serve every container ` +
        "the node's own values; boot the node with cgroup v2 (Kubernetes >= 1.35 requires it) or give the agent an lxcfs 6.0.x",
      { setting: 'bin' },
    );
  }
  if (version !== undefined && options.lxcfsArgs !== undefined) {
    const rejected = rejectedLxcfsArgs(version, options.lxcfsArgs);
    if (rejected.length > 0)
      throw new LxcfsWebhookError('E_CONFIG', rejected.join('; '), { setting: 'lxcfsArgs' });
  }
  if (version !== undefined && resetsCgroupOptions(version)) {
    log.warn(
      { lxcfsVersion: version.text },
      `lxcfs ${version.text} clears the node's cgroup2 mount options (nsdelegate, memory_recursiveprot) when it starts in the node's cgroup ` +
        'namespace (lxc/lxcfs#681, fixed in 6.0.6): use lxcfs >= 6.0.6 (the agent image ships 7.0.0); `check node` shows the options',
    );
  }
  const args = options.lxcfsArgs ?? defaultLxcfsArgs(version, { loadavg: options.lxcfsLoadavg });
  log.info(
    { lxcfsVersion: version?.text ?? 'unknown', lxcfsArgs: args.join(' ') },
    'lxcfs version and flags',
  );
  return args;
}

export async function startAgent(options: AgentOptions, log: Logger): Promise<RunningAgent> {
  const {
    layout,
    pidfile,
    stateDir,
    stateFile: statePath,
    legacyStateFile,
    fusectlDir,
  } = agentLayout(options);
  const remountSupported = await preflight(layout, log);
  const lxcfsArgs = lxcfsArgsFor(options, log);
  const cgroupNs = planCgroupNamespace(options.proc);
  for (const warning of cgroupNs.warnings) log.warn(warning);
  if (cgroupNs.enter)
    log.info(
      { own: cgroupNs.own, host: cgroupNs.host },
      "agent runs in a private cgroup namespace: lxcfs starts in the host's",
    );
  claimAnchorDirectory(layout);
  const lock = await holdAnchorLock(layout, log);
  try {
    await prepareAnchor(layout, log);
    await lock.again(); // the anchor tmpfs prepareAnchor may just have mounted
    await prepareStateDirectory(stateDir, layout.helper, log);
  } catch (err) {
    await lock.release();
    throw err;
  }

  const metrics = new AgentMetrics();
  const codePages = codePagesRelease(options.sweepIntervalMs, log);
  const stateFile = new StateFile(statePath, legacyStateFile);
  // Reads inside containers catch what mountinfo cannot show.
  const reads = new ContainerReads(
    {
      helper: layout.helper,
      proc: options.proc,
      sampleSize: PEEK_SAMPLE_SIZE,
      timeoutMs: options.probeTimeoutMs,
    },
    { metrics, log, forgetChosenProcess: (mntNs) => sweeper.forgetChosenProcess(mntNs) },
  );
  const events = notificationSources(options, layout.helper, log, {
    changed: () => schedule.changed(),
    cgroupCreated: () => schedule.cgroupCreated(),
    coverageChanged: () => schedule.coverageChanged(),
  });
  const { watch, cgroups } = events;
  const sweeper = new Sweeper(
    sweepConfig(layout, options.proc, remountSupported, options.sweepIntervalMs),
    {
      stateFile,
      metrics,
      log,
      watch,
      reads,
      afterSweep: (report) => {
        schedule.swept(report);
        if (report?.trigger === 'start' || report?.trigger === 'lxcfs-restart')
          codePages.burstOver();
      },
    },
  );
  const schedule = new SweepSchedule(
    {
      pollMs: options.sweepIntervalMs,
      fullMs: options.fullSweepIntervalMs,
      settleMs: CHANGE_SETTLE_MS,
      changeGapMs: CHANGE_SWEEP_GAP_MS,
      newCgroupMs: NEW_CGROUP_SWEEPS_MS,
    },
    (trigger) => sweeper.sweep(trigger),
    () => watch?.complete === true && cgroups?.complete === true,
  );
  const supervisor = new Supervisor(
    {
      layout,
      lxcfs: {
        bin: options.lxcfsBin,
        args: lxcfsArgs,
        fuseMount: layout.fuseMount,
        pidfile,
        cgroupNs,
      },
      proc: options.proc,
      probeIntervalMs: options.probeIntervalMs,
      probeTimeoutMs: options.probeTimeoutMs,
      hangGraceMs: options.hangGraceMs,
      fusectlDir,
    },
    sweeper,
    metrics,
    log,
  );

  const notReadyReasons = (): string[] => {
    const lxcfs = supervisor.status();
    const { stateSaveError, attempts } = sweeper.health();
    return nodeProblems({
      anchorRoot: layout.root,
      fuseMount: layout.fuseMount,
      lxcfsRunning: lxcfs.pid !== undefined,
      fuseMounted: lxcfs.dev !== undefined,
      probe:
        lxcfs.lastProbe ??
        (lxcfs.pid === undefined ? undefined : { ok: false, ms: 0, error: 'not probed yet' }),
      anchor: inspectAnchor(readOwnMounts(), layout.root, lxcfs.dev),
      firstSweepDone: sweeper.hasSwept,
      agent: { stateSaveError, repairFailures: attempts, lockProblem: lock.problem() },
    });
  };
  const health = createHealthServer({ registry: metrics.registry, notReadyReasons, logger: log });
  const healthPort = await listen(health, {
    port: options.healthPort,
    what: 'health port',
    setting: 'healthPort',
  });
  log.info(
    {
      healthPort,
      anchor: layout.root,
      fuseMount: layout.fuseMount,
      remountSupported,
      mountNotifications: options.mountNotifications,
    },
    'agent starting',
  );

  cgroups?.start();
  try {
    await supervisor.start();
  } catch (err) {
    await supervisor.stop().catch(() => undefined);
    await watch?.stop();
    await cgroups?.stop();
    await closeNow(health);
    await lock.release();
    throw err;
  }
  schedule.start();
  // A watcher that stopped (SIGSTOP, starved) reports nothing, and a quiet node has no sweep that would
  // ping it: a ping of its own every sweep interval notices it, kills it, and so starts the polls.
  const watchPing = watch
    ? setInterval(
        () => void watch.checkAnswering(MOUNT_WATCH_PING_TIMEOUT_MS),
        options.sweepIntervalMs,
      ).unref()
    : undefined;

  return {
    healthPort,
    async stop() {
      clearInterval(watchPing);
      codePages.stop();
      schedule.stop();
      await supervisor.stop();
      await watch?.stop();
      await cgroups?.stop();
      await closeNow(health);
      await lock.release();
      log.info('agent stopped');
    },
    hurry: () => supervisor.hurry(),
  };
}
