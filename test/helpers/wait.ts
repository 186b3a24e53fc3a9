// The one way tests, the VM suite and the benchmarks wait for something: a probe polled until it gives a
// value, with a deadline that fails the wait naming what never happened. Nothing here asserts timing.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Fails after this long. */
  timeoutMs?: number;
  /** Pause between probes. */
  intervalMs?: number;
  /** Checked before each probe: a reason to stop waiting at once (the process under test exited). */
  abandon?: () => string | undefined;
}

/** What a probe answers: a value ends the wait; undefined or false means not yet. */
type Probed<T> = T | undefined | false;

/**
 * Calls `probe` until it returns something other than undefined or false, and returns that. A probe that
 * throws counts as "not yet"; its last error is part of the failure at the deadline.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Probed<T> | Promise<Probed<T>>,
  { timeoutMs = 30_000, intervalMs = 50, abandon }: WaitOptions = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = abandon?.();
    if (reason !== undefined) throw new assert.AssertionError({ message: `${what}: ${reason}` });
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline) {
      const last = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`;
      throw new assert.AssertionError({ message: `${what}: not within ${timeoutMs} ms${last}` });
    }
    await sleep(intervalMs);
  }
}
