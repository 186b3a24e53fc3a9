// `lxcfs-webhook agent`: the process of the LXCFS DaemonSet (privileged, hostPID).
import { parseArgs } from 'node:util';
import {
  DEFAULT_AGENT_HEALTH_PORT,
  DEFAULT_FUSE_MOUNT,
  DEFAULT_HANG_GRACE_MS,
  DEFAULT_LXCFS_ARGS,
  DEFAULT_LXCFS_BIN,
  DEFAULT_LXCFS_ROOT,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_PROC,
  DEFAULT_REMOUNT_HELPER,
  DEFAULT_SWEEP_INTERVAL_MS,
  LXCFS_STOP_TIMEOUT_MS,
} from '../config/defaults.js';
import { configError } from '../errors.js';
import { createLogger } from '../log.js';
import { startAgent, type AgentOptions } from '../agent/agent.js';
import { agentLayout } from '../agent/layout.js';
import { removeAnchor } from '../agent/lxcfs/anchor.js';
import { findLxcfsServing, killAndWait } from '../agent/lxcfs/process.js';
import { nextStopSignal, untilDoneOrSecondSignal } from '../runtime/signals.js';
import type { Command } from './command.js';

const usage = `usage: lxcfs-webhook agent [flags]

Runs lxcfs, keeps its files mounted in an anchor pods take hostPaths from, and repairs the lxcfs
mounts of running containers after lxcfs restarts. Needs root, /dev/fuse, hostPID.

flags:
  --lxcfs-root <dir>        the anchor pods mount from (default ${DEFAULT_LXCFS_ROOT})
  --fuse-mount <dir>        where lxcfs itself mounts, private to the agent (default ${DEFAULT_FUSE_MOUNT})
  --lxcfs-bin <path>        lxcfs executable (default ${DEFAULT_LXCFS_BIN}, from PATH)
  --lxcfs-args <args>       lxcfs flags, space-separated (default "${DEFAULT_LXCFS_ARGS.join(' ')}")
  --proc <dir>              the host's procfs (default ${DEFAULT_PROC})
  --health-port <port>      /livez, /readyz, /metrics (default ${DEFAULT_AGENT_HEALTH_PORT})
  --sweep-interval <dur>    how often to check every container (default ${DEFAULT_SWEEP_INTERVAL_MS / 1000}s)
  --remount-helper <path>   the native helper (default ${DEFAULT_REMOUNT_HELPER})
  --probe-interval <dur>    how often to read through lxcfs (default ${DEFAULT_PROBE_INTERVAL_MS / 1000}s)
  --probe-timeout <dur>     how long one read may take (default ${DEFAULT_PROBE_TIMEOUT_MS / 1000}s)
  --hang-grace <dur>        restart lxcfs after it has not answered for this long (default ${DEFAULT_HANG_GRACE_MS / 1000}s)
  --uninstall               instead of running: stop a leftover lxcfs, remove its mounts, the anchor tmpfs and
                            the directories, then exit (for uninstalling; the agent DaemonSet must be gone)

Durations: 500ms, 10s, 2m, or plain seconds.`;

/** `500ms`, `10s`, `2m` or a number of seconds, in milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!match) throw configError(`--${flag} "${value}" is not a duration: use e.g. 500ms, 10s or 2m`);
  const unit = { ms: 1, s: 1000, m: 60_000 }[match[2] ?? 's']!;
  const ms = Math.round(Number(match[1]) * unit);
  if (ms <= 0) throw configError(`--${flag} must be longer than 0`);
  return ms;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw configError(`--health-port "${value}" is not a port: use 0-65535`);
  return port;
}

const flags = {
  'lxcfs-root': { type: 'string', default: DEFAULT_LXCFS_ROOT },
  'fuse-mount': { type: 'string', default: DEFAULT_FUSE_MOUNT },
  'lxcfs-bin': { type: 'string', default: DEFAULT_LXCFS_BIN },
  'lxcfs-args': { type: 'string', default: DEFAULT_LXCFS_ARGS.join(' ') },
  proc: { type: 'string', default: DEFAULT_PROC },
  'health-port': { type: 'string', default: String(DEFAULT_AGENT_HEALTH_PORT) },
  'sweep-interval': { type: 'string', default: `${DEFAULT_SWEEP_INTERVAL_MS}ms` },
  'remount-helper': { type: 'string', default: DEFAULT_REMOUNT_HELPER },
  'probe-interval': { type: 'string', default: `${DEFAULT_PROBE_INTERVAL_MS}ms` },
  'probe-timeout': { type: 'string', default: `${DEFAULT_PROBE_TIMEOUT_MS}ms` },
  'hang-grace': { type: 'string', default: `${DEFAULT_HANG_GRACE_MS}ms` },
  uninstall: { type: 'boolean', default: false },
} as const;

type AgentCommandOptions = AgentOptions & { uninstall: boolean };

async function uninstall(options: AgentOptions): Promise<number> {
  const log = createLogger('agent');
  const { layout } = agentLayout(options);
  await killAndWait(options.proc, findLxcfsServing(options.proc, layout.fuseMount), LXCFS_STOP_TIMEOUT_MS);
  const { leftovers } = await removeAnchor(layout, log);
  if (leftovers.length > 0) {
    log.warn({ leftovers }, 'left in place: not empty or busy; remove by hand once checked');
    return 1;
  }
  log.info({ anchor: layout.root }, 'uninstalled: no lxcfs mounts or directories left');
  return 0;
}

export const command: Command<AgentCommandOptions> = {
  name: 'agent',
  summary: 'run the node agent: lxcfs, its anchor, remounts after restarts',
  usage,
  parse(args): AgentCommandOptions {
    let parsed;
    try {
      parsed = parseArgs({ args, strict: true, options: flags });
    } catch (err) {
      throw configError(`${(err as Error).message}; see lxcfs-webhook agent --help`);
    }
    const { values } = parsed;
    return {
      lxcfsRoot: values['lxcfs-root'],
      fuseMount: values['fuse-mount'],
      lxcfsBin: values['lxcfs-bin'],
      lxcfsArgs: values['lxcfs-args'].split(/\s+/).filter((a) => a !== ''),
      proc: values.proc,
      healthPort: parsePort(values['health-port']),
      sweepIntervalMs: parseDuration('sweep-interval', values['sweep-interval']),
      remountHelper: values['remount-helper'],
      probeIntervalMs: parseDuration('probe-interval', values['probe-interval']),
      probeTimeoutMs: parseDuration('probe-timeout', values['probe-timeout']),
      hangGraceMs: parseDuration('hang-grace', values['hang-grace']),
      uninstall: values.uninstall,
    };
  },
  async run({ uninstall: uninstalling, ...options }) {
    if (uninstalling) return uninstall(options);
    const log = createLogger('agent');
    // Before start-up: a SIGTERM that arrives while lxcfs starts still stops it cleanly.
    const first = nextStopSignal();
    const agent = await startAgent(options, log).catch((err: unknown) => {
      first.cancel();
      throw err;
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
