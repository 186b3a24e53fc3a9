// `lxcfs-webhook agent`: the process of the LXCFS DaemonSet (privileged, hostPID).
import {
  DEFAULT_AGENT_HEALTH_PORT,
  DEFAULT_FULL_SWEEP_INTERVAL_MS,
  DEFAULT_HANG_GRACE_MS,
  DEFAULT_LXCFS_BIN,
  DEFAULT_LXCFS_LOADAVG,
  DEFAULT_MOUNT_NOTIFICATIONS,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_SWEEP_INTERVAL_MS,
} from '../config/defaults.js';
import { createLogger } from '../log.js';
import { startAgent, type AgentOptions } from '../agent/agent.js';
import { uninstallNode } from '../agent/uninstall.js';
import { nextStopSignal, untilDoneOrSecondSignal } from '../plumbing/signals.js';
import type { Command } from './command.js';
import { FlagSet, helpText, withFlagName } from './flags.js';
import { nodeFlags } from './shared-flags.js';
import { duration, onOff, path, port, words } from './values.js';

/** Agent durations drive timers: 0 would spin. */
const agentDuration = duration(1);

const flags = new FlagSet('agent', {
  ...nodeFlags,
  'lxcfs-bin': {
    kind: path('PATH'),
    default: DEFAULT_LXCFS_BIN,
    help: 'lxcfs executable, a path or a name looked up in PATH',
  },
  'lxcfs-args': {
    kind: words,
    help:
      "lxcfs flags, space-separated, instead of the agent's choice for the lxcfs version it finds (--enable-cfs; " +
      '--enable-pidfd on lxcfs 4.0 to 6.x; -l unless --lxcfs-loadavg=false); write --lxcfs-args=VALUE when VALUE starts with -',
  },
  'lxcfs-loadavg': {
    kind: onOff,
    help:
      `per-container /proc/loadavg (lxcfs -l, in the agent's choice of flags): lxcfs then reads the task list of every container ` +
      `that read /proc/loadavg every 5 s; false: lxcfs serves the node's loadavg (default ${DEFAULT_LXCFS_LOADAVG})`,
  },
  'health-port': {
    kind: port,
    default: DEFAULT_AGENT_HEALTH_PORT,
    help: 'HTTP port for /livez, /readyz and /metrics',
  },
  'sweep-interval': {
    kind: agentDuration,
    default: DEFAULT_SWEEP_INTERVAL_MS,
    help: 'how often to check every container while notifications are off or incomplete',
  },
  'full-sweep-interval': {
    kind: agentDuration,
    default: DEFAULT_FULL_SWEEP_INTERVAL_MS,
    help: 'how often to check every container and read every mount table anyway (the safety net)',
  },
  'mount-notifications': {
    kind: onOff,
    default: DEFAULT_MOUNT_NOTIFICATIONS,
    help: 'watch mount tables and cgroups so the agent sweeps when something changed and reads only what did; false: poll every --sweep-interval, reading every mount table',
  },
  'probe-interval': {
    kind: agentDuration,
    default: DEFAULT_PROBE_INTERVAL_MS,
    help: 'how often to read through lxcfs',
  },
  'probe-timeout': {
    kind: agentDuration,
    default: DEFAULT_PROBE_TIMEOUT_MS,
    help: 'how long one read may take',
  },
  'hang-grace': {
    kind: agentDuration,
    default: DEFAULT_HANG_GRACE_MS,
    help: 'restart lxcfs after it has not answered for this long',
  },
  uninstall: {
    kind: 'switch',
    help:
      'instead of running: stop a leftover lxcfs, remove its mounts, the anchor tmpfs and the directories, ' +
      'then exit (for uninstalling; the agent DaemonSet must be gone)',
  },
});

const usage = helpText(flags, {
  synopsis: 'agent [flags]',
  about: `Runs lxcfs, keeps its files mounted in an anchor pods take hostPaths from, and repairs the lxcfs
mounts of running containers after lxcfs restarts. Needs root, /dev/fuse, hostPID.`,
  footer: 'Durations: 500ms, 10s, 2m, or a bare number of seconds.',
});

type AgentCommandOptions = AgentOptions & { uninstall: boolean };

/** The flag of each setting the agent's errors can name (anchor layout, lxcfs command, health port). */
const FLAG_OF_SETTING: Record<string, string> = {
  root: '--lxcfs-root',
  fuseMount: '--fuse-mount',
  helper: '--remount-helper',
  bin: '--lxcfs-bin',
  lxcfsArgs: '--lxcfs-args',
  healthPort: '--health-port',
};

export const command: Command<AgentCommandOptions> = {
  name: 'agent',
  summary: 'run the node agent: lxcfs, its anchor, remounts after restarts',
  usage,
  parse(args): AgentCommandOptions {
    const { values } = flags.parse(args);
    if (values['lxcfs-args'] !== undefined && values['lxcfs-loadavg'] !== undefined) {
      throw flags.usageError(
        "--lxcfs-loadavg chooses -l among the agent's own lxcfs flags; with --lxcfs-args, put -l in them or leave it out",
      );
    }
    return {
      lxcfsRoot: values['lxcfs-root'],
      fuseMount: values['fuse-mount'],
      lxcfsBin: values['lxcfs-bin'],
      lxcfsArgs: values['lxcfs-args'] && [...values['lxcfs-args']],
      lxcfsLoadavg: values['lxcfs-loadavg'] ?? DEFAULT_LXCFS_LOADAVG,
      proc: values.proc,
      healthPort: values['health-port'],
      sweepIntervalMs: values['sweep-interval'],
      fullSweepIntervalMs: values['full-sweep-interval'],
      mountNotifications: values['mount-notifications'],
      remountHelper: values['remount-helper'],
      probeIntervalMs: values['probe-interval'],
      probeTimeoutMs: values['probe-timeout'],
      hangGraceMs: values['hang-grace'],
      uninstall: values.uninstall,
    };
  },
  async run({ uninstall: uninstalling, ...options }) {
    if (uninstalling) return (await uninstallNode(options, createLogger('agent'))) ? 0 : 1;
    const log = createLogger('agent');
    // Before start-up: a SIGTERM that arrives while lxcfs starts still stops it cleanly.
    const first = nextStopSignal();
    const agent = await startAgent(options, log).catch((err: unknown) => {
      first.cancel();
      throw withFlagName(err, FLAG_OF_SETTING);
    });
    const signal = await first.signal;
    first.cancel();
    log.info({ signal }, 'stopping');
    const stopping = agent.stop();
    const early = await untilDoneOrSecondSignal(stopping);
    if (early) {
      log.info({ signal: early }, 'second signal: killing lxcfs now');
      agent.hurry();
      await stopping;
    }
    return 0;
  },
};
