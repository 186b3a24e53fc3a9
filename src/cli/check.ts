// `lxcfs-webhook check node`: one screen on the node's lxcfs setup, exit 1 when something is wrong.
// Run it where the agent runs (kubectl exec into the agent pod): it needs the agent's view of mounts.
import { basename } from 'node:path';
import { CHECK_MAX_LISTED_CONTAINERS } from '../config/defaults.js';
import { configError } from '../errors.js';
import { missingSystemdOptions } from '../agent/host/cgroup2-options.js';
import { inspectNode, type NodeReport } from '../agent/node-health.js';
import type { NamespaceView } from '../agent/repair/survey.js';
import type { Command } from './command.js';
import { FlagSet, helpText } from './flags.js';
import { nodeFlags } from './shared-flags.js';

const flags = new FlagSet('check', nodeFlags);

const usage = helpText(flags, {
  synopsis: 'check node [flags]',
  about: `Checks the node's lxcfs: running and answering, anchor mounted and bound, and every container's
lxcfs files live; and the node around it: other lxcfs processes, and cgroup2 mount options an lxcfs
older than 6.0.6 cleared. Exits 1 when something is wrong. Give it the flags the agent was given.`,
});

/** `pod <uid> container <id>`, or the cgroup of a process outside Kubernetes. */
function describeContainer(view: NamespaceView): string {
  return view.identity.podUid
    ? `pod ${view.identity.podUid} container ${view.identity.containerId?.slice(0, 12) ?? '?'}`
    : `cgroup ${view.identity.cgroup}`;
}

/** `pod <uid> container <id>: stale meminfo, cpuinfo; missing uptime  (mnt:[…], pid N)` */
function describeBroken(view: NamespaceView): string {
  const who = describeContainer(view);
  const byState = (['stale', 'missing'] as const)
    .map(
      (state) =>
        [
          state,
          view.statuses.filter((s) => s.state === state).map((s) => basename(s.target)),
        ] as const,
    )
    .filter(([, files]) => files.length > 0)
    .map(([state, files]) => `${state} ${files.join(', ')}`);
  return `${who}: ${byState.join('; ')}  (${view.ns.mntNs}, pid ${view.ns.pid})`;
}

/** `none`, or `pid 812 lxcfs.service on /var/lib/lxcfs; pid 900 pod <uid>`. */
function describeOthers(report: NodeReport): string {
  const others = report.otherLxcfs ?? [];
  if (others.length === 0) return 'no other lxcfs';
  return others
    .map(
      (o) =>
        `lxcfs pid ${o.pid} ${o.unit ?? (o.podUid ? `pod ${o.podUid}` : `cgroup ${o.cgroup}`)}${o.mountPoint ? ` on ${o.mountPoint}` : ''}`,
    )
    .join('; ');
}

/** `/sys/fs/cgroup rw,nsdelegate,memory_recursiveprot (systemd's)`, or what is missing. */
function describeCgroup2(report: NodeReport): string {
  const facts = report.cgroup2;
  if (facts === undefined) return 'no cgroup2 mount seen';
  const missing = missingSystemdOptions(facts);
  const verdict = !facts.initIsSystemd
    ? 'PID 1 is not systemd: not compared'
    : missing.length === 0
      ? "systemd's"
      : `WITHOUT ${missing.join(', ')}`;
  return `${facts.mountPoint} ${facts.options.join(',')} (${verdict})`;
}

function render(report: NodeReport): string {
  const lxcfs =
    report.lxcfsPids.length === 0
      ? 'not running'
      : `running (pid ${report.lxcfsPids.join(', ')}${report.lxcfsVersion ? `, version ${report.lxcfsVersion.text}` : ''}), ` +
        (report.probe?.ok
          ? `answering in ${report.probe.ms} ms`
          : `NOT answering (${report.probe?.error ?? 'not mounted'})`);
  const binds = Object.entries(report.anchor.binds)
    .map(([dir, state]) => `${dir} ${state}`)
    .join(', ');
  const anchor = `${report.anchorRoot}: ${report.anchor.tmpfs ? 'tmpfs' : 'NOT a tmpfs'}; ${binds}`;
  const remount = report.mountApi.supported
    ? `supported${report.mountApi.mountSetattr ? '' : ' (without mount_setattr)'}`
    : `NOT supported (${report.mountApi.errno})`;
  const lines = [
    `lxcfs       ${lxcfs}`,
    `others      ${describeOthers(report)}`,
    `cgroup2     ${describeCgroup2(report)}`,
    `fuse mount  ${report.fuseMount}${report.fuseDev ? ` (dev ${report.fuseDev}${report.lxcfsPids.length === 0 ? ', dead' : ''})` : ': nothing mounted'}`,
    `anchor      ${anchor}`,
    `remount     ${remount}`,
    `containers  ${report.views.length} with lxcfs files, ${report.containers.stale} stale, ${report.containers.missing} missing`,
  ];
  const broken = report.views.filter((v) => v.statuses.some((s) => s.state !== 'live'));
  for (const view of broken.slice(0, CHECK_MAX_LISTED_CONTAINERS))
    lines.push(`  ${describeBroken(view)}`);
  if (broken.length > CHECK_MAX_LISTED_CONTAINERS)
    lines.push(`  ... and ${broken.length - CHECK_MAX_LISTED_CONTAINERS} more`);
  const { reads } = report.containers;
  lines.push(
    `reads       ${reads.files} files read inside ${reads.containers} sampled containers, ${reads.unreadable.length} failed`,
  );
  for (const failed of reads.unreadable.slice(0, CHECK_MAX_LISTED_CONTAINERS)) {
    lines.push(
      `  ${describeContainer(failed.view)}: ${failed.target} ${failed.error}  (${failed.view.ns.mntNs}, pid ${failed.view.ns.pid})`,
    );
  }
  if (reads.unreadable.length > CHECK_MAX_LISTED_CONTAINERS)
    lines.push(`  ... and ${reads.unreadable.length - CHECK_MAX_LISTED_CONTAINERS} more`);
  lines.push(
    '',
    report.problems.length === 0
      ? 'OK'
      : ['PROBLEMS:', ...report.problems.map((p) => `  - ${p}`)].join('\n'),
  );
  return lines.join('\n');
}

export const command: Command<Parameters<typeof inspectNode>[0]> = {
  name: 'check',
  summary: 'check node: is lxcfs healthy on this node, are containers covered',
  usage,
  parse(args) {
    const { values, positionals } = flags.parse(args, { allowPositionals: true });
    if (positionals.length !== 1 || positionals[0] !== 'node')
      throw configError('what to check? use: lxcfs-webhook check node');
    return {
      lxcfsRoot: values['lxcfs-root'],
      fuseMount: values['fuse-mount'],
      proc: values.proc,
      remountHelper: values['remount-helper'],
    };
  },
  async run(options) {
    const report = await inspectNode(options);
    console.log(render(report));
    return report.problems.length === 0 ? 0 : 1;
  },
};
