// How many mount namespaces of one container the agent looks after. A container (one cgroup) normally
// has one mount namespace holding lxcfs files; more are copies its processes made (`unshare -m` in a
// privileged container, a sandbox, a nested runtime), and a workload may make thousands. Only the
// oldest `max` of a container's namespaces are repaired and remembered, so one container can neither
// fill the agent's state nor hold up the repairs of the others; the first of them (the container's own:
// its init is the oldest process) is repaired first. Pure: namespaces carry their chosen process's
// start time.
import type { NamespaceView } from './survey.js';

export interface Bounded {
  /** The views the agent looks after, in their order. */
  kept: NamespaceView[];
  /** Per view kept: 0 for the oldest namespace of its container, 1 for the next, ... */
  rank: Map<string, number>;
  /** Per container (cgroup) over the limit: how many namespaces it has. */
  over: Map<string, number>;
}

export function limitPerContainer(views: readonly NamespaceView[], max: number): Bounded {
  const byContainer = new Map<string, NamespaceView[]>();
  for (const view of views) {
    const group = byContainer.get(view.identity.cgroup);
    if (group) group.push(view);
    else byContainer.set(view.identity.cgroup, [view]);
  }
  const rank = new Map<string, number>();
  const over = new Map<string, number>();
  for (const [cgroup, group] of byContainer) {
    if (group.length === 1) {
      rank.set(group[0]!.ns.mntNs, 0);
      continue;
    }
    group.sort((a, b) => a.ns.startTime - b.ns.startTime);
    group.slice(0, max).forEach((v, i) => rank.set(v.ns.mntNs, i));
    if (group.length > max) over.set(cgroup, group.length);
  }
  return { kept: views.filter((v) => rank.has(v.ns.mntNs)), rank, over };
}
