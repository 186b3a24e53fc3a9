// Stop signals, handled the same way by every long-running command: the first SIGTERM or SIGINT starts
// a clean stop (drain, stop lxcfs...), and a second one cuts the wait short. Handlers are installed
// before start-up work, so a signal that arrives then is not lost and cannot kill the process halfway.
export interface PendingSignal {
  signal: Promise<NodeJS.Signals>;
  /** Removes the handlers (the default action, exit, applies again). */
  cancel(): void;
}

/** Resolves at the next SIGTERM or SIGINT. Handlers stay until cancelled, so no signal kills the process. */
export function nextStopSignal(): PendingSignal {
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

/**
 * Waits for `stopping` (a drain, a clean shutdown); a second stop signal ends the wait at once and is
 * returned, so the caller can cut short what is left.
 */
export async function untilDoneOrSecondSignal(
  stopping: Promise<void>,
): Promise<NodeJS.Signals | undefined> {
  const second = nextStopSignal();
  try {
    return await Promise.race([stopping.then(() => undefined), second.signal]);
  } finally {
    second.cancel();
  }
}
