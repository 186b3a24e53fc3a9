// One metrics style for every component: a class that owns a registry of its own (never prom-client's
// global one, so each server and each test counts only itself), keeps its prom-client metrics private,
// and is told what happened through `record*` methods. Callers never touch a counter directly.
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * A registry with the process metrics (CPU, memory, event loop) under `prefix`. The event loop's delay
 * is sampled by a timer every `eventLoopPrecisionMs` (prom-client's default, 10 ms, wakes the process
 * 100 times a second whether it has work or not).
 */
export function createRegistry(prefix: string, eventLoopPrecisionMs?: number): Registry {
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix,
    ...(eventLoopPrecisionMs === undefined
      ? {}
      : { eventLoopMonitoringPrecision: eventLoopPrecisionMs }),
  });
  return registry;
}
