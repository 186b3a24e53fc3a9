// One metrics style for every component: a class that owns a registry of its own (never prom-client's
// global one, so each server and each test counts only itself), keeps its prom-client metrics private,
// and is told what happened through `record*` methods. Callers never touch a counter directly.
import { collectDefaultMetrics, Registry } from 'prom-client';

/** A registry with the process metrics (CPU, memory, event loop) under `prefix`. */
export function createRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
