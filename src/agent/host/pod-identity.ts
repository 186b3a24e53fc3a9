// Names the pod and container a process belongs to from its /proc/<pid>/cgroup, so every log line
// about a container can be traced back to Kubernetes without API access. Pure.
//
// The kubelet's two cgroup drivers name the same container differently:
//   cgroupfs: /kubepods/burstable/pod0b6c…-…/3f2a…(64 hex)
//   systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b6c…_….slice/cri-containerd-3f2a….scope
// Anything else (not a pod, or a layout we do not know) is identified by its raw cgroup path.

export interface PodIdentity {
  podUid?: string;
  containerId?: string;
  /** The cgroup path the identity was read from; unique per container, so it also tells a reused
   *  namespace inode apart from the namespace the agent remembers. */
  cgroup: string;
}

const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;
// docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, or a bare id (cgroupfs driver).
const CONTAINER_ID = /^(?:[a-z-]+-)?([0-9a-f]{64})(?:\.scope)?$/;

/** The line to read: a kubepods path if any hierarchy has one, else memory (v1), else the v2 line. */
function pickCgroupPath(lines: string[][]): string {
  const paths = lines.map(([, controllers, path]) => ({
    controllers: controllers ?? '',
    path: path ?? '',
  }));
  const chosen =
    paths.find((p) => p.path.includes('kubepods')) ??
    paths.find((p) => p.controllers.split(',').includes('memory')) ??
    paths.find((p) => p.controllers === '') ??
    paths[0];
  return chosen?.path ?? '';
}

export function parsePodIdentity(cgroupFile: string): PodIdentity {
  const lines = cgroupFile
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      // hierarchy-id:controllers:path, where the path itself may contain ':'
      const first = l.indexOf(':');
      const second = l.indexOf(':', first + 1);
      return [l.slice(0, first), l.slice(first + 1, second), l.slice(second + 1)];
    });
  const cgroup = pickCgroupPath(lines);
  const identity: PodIdentity = { cgroup };

  const uid = POD_UID.exec(cgroup)?.[1];
  if (uid === undefined) return identity;
  identity.podUid = uid.replaceAll('_', '-');
  const last = cgroup.split('/').at(-1) ?? '';
  const containerId = CONTAINER_ID.exec(last)?.[1];
  if (containerId !== undefined) identity.containerId = containerId;
  return identity;
}
