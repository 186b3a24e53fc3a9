// Decides, for one container mount namespace, the state of every lxcfs file the webhook may inject.
// Pure: it sees parsed mountinfo and what the agent knows, and touches nothing.
//
// A mount is ours when it is a FUSE mount on a connection one of our lxcfs instances served (its dev
// number, remembered since that instance mounted) at a path the webhook injects. Another lxcfs on the
// node (another dev) and any other FUSE filesystem are never ours.
import { isFuse, isReadOnly, topMountAt, type Mount } from '../host/mountinfo.js';

export type TargetState =
  /** served by the running lxcfs */
  | 'live'
  /** a mount of an lxcfs of ours that is gone: reads fail with "Transport endpoint is not connected" */
  | 'stale'
  /** was mounted from our lxcfs, now nothing of ours is there: reads silently show the node's values */
  | 'missing';

/** What the agent remembers of a target it once saw live, so it can tell when it goes missing. */
export interface RememberedTarget {
  /** The file inside lxcfs, e.g. `/proc/meminfo`. */
  lxcfsPath: string;
  readOnly: boolean;
}

export interface TargetStatus extends RememberedTarget {
  /** Path inside the container. */
  target: string;
  state: TargetState;
  /** The id of the dead mount, for a stale target: descriptors opened through it stay dead. */
  deadMountId?: number;
}

export interface ClassifyInput {
  mounts: readonly Mount[];
  /** dev of the running lxcfs' FUSE connection. */
  liveDev: string;
  /** devs of every lxcfs connection of ours whose mounts may still exist somewhere. */
  knownDevs: ReadonlySet<string>;
  remembered: Readonly<Record<string, RememberedTarget>>;
  /** The files the webhook may inject (ALLOWED_FILES): nothing else is ever touched. */
  files: readonly string[];
}

/** A FUSE mount on a connection of ours, whatever its root shows: the kernel's view, not the path's. */
export function isOurMount(
  mount: Mount,
  devs: Pick<ClassifyInput, 'liveDev' | 'knownDevs'>,
): boolean {
  return isFuse(mount) && (mount.dev === devs.liveDev || devs.knownDevs.has(mount.dev));
}

/**
 * Classification is a function of its input alone, so the same input objects get the same answer: a
 * caller that keeps unchanged inputs as the same objects reuses its last result instead of classifying
 * again (an idle sweep's namespaces). Compared by identity, which costs nothing; an equal copy is new.
 */
export function sameInput(a: ClassifyInput, b: ClassifyInput): boolean {
  return (
    a.mounts === b.mounts &&
    a.liveDev === b.liveDev &&
    a.knownDevs === b.knownDevs &&
    a.remembered === b.remembered &&
    a.files === b.files
  );
}

export function classifyTargets(input: ClassifyInput): TargetStatus[] {
  const { mounts, liveDev, remembered, files } = input;
  const statuses: TargetStatus[] = [];
  for (const target of files) {
    const top = topMountAt(mounts, target);
    if (top && isOurMount(top, input) && files.includes(top.root)) {
      // Literals, not spreads: V8 reads spread-built objects several times slower, and every sweep reads these.
      const lxcfsPath = top.root;
      const readOnly = isReadOnly(top);
      statuses.push(
        top.dev === liveDev
          ? { target, lxcfsPath, readOnly, state: 'live' }
          : { target, lxcfsPath, readOnly, state: 'stale', deadMountId: top.mountId },
      );
      continue;
    }
    const wasOurs = remembered[target];
    // Something else's FUSE mount on top (another lxcfs) is left alone even where ours used to be.
    if (wasOurs && !(top && isFuse(top)))
      statuses.push({
        target,
        lxcfsPath: wasOurs.lxcfsPath,
        readOnly: wasOurs.readOnly,
        state: 'missing',
      });
  }
  return statuses;
}
