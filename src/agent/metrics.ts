// The agent's Prometheus metrics, on a registry of its own (never prom-client's global one).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;

export function createAgentMetrics() {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: 'lxcfs_webhook_agent_' });
  return {
    registry,
    lxcfsUp: new Gauge({ name: 'lxcfs_webhook_agent_lxcfs_up', help: '1 while lxcfs runs and answers probes', registers }),
    lxcfsRestarts: new Counter({ name: 'lxcfs_webhook_agent_lxcfs_restarts_total', help: 'lxcfs (re)starts after the first', registers }),
    sweeps: new Counter({ name: 'lxcfs_webhook_agent_sweeps_total', help: 'Sweeps over all container mount namespaces', labelNames: ['trigger'] as const, registers }),
    sweepDuration: new Histogram({
      name: 'lxcfs_webhook_agent_sweep_duration_seconds',
      help: 'Wall time of one sweep, remounts included',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    lastSweepCpu: new Gauge({ name: 'lxcfs_webhook_agent_last_sweep_cpu_seconds', help: 'CPU time the agent spent in its last sweep', registers }),
    staleFound: new Counter({ name: 'lxcfs_webhook_agent_stale_found_total', help: 'Targets found on a dead lxcfs connection', registers }),
    missingFound: new Counter({ name: 'lxcfs_webhook_agent_missing_found_total', help: 'Targets injected earlier whose lxcfs mount is gone', registers }),
    remounts: new Counter({ name: 'lxcfs_webhook_agent_remounts_total', help: 'Targets remounted in running containers', labelNames: ['result'] as const, registers }),
    containersCovered: new Gauge({ name: 'lxcfs_webhook_agent_containers_covered', help: 'Container mount namespaces with live lxcfs files after the last sweep', registers }),
    unreadableFiles: new Gauge({
      name: 'lxcfs_webhook_agent_unreadable_files',
      help: 'lxcfs files that failed a one-byte read inside the containers sampled after the last sweep',
      registers,
    }),
    filesRead: new Counter({
      name: 'lxcfs_webhook_agent_files_read_total',
      help: 'One-byte reads of lxcfs files inside sampled containers',
      labelNames: ['result'] as const,
      registers,
    }),
    deadDescriptorProcesses: new Gauge({
      name: 'lxcfs_webhook_agent_dead_descriptor_processes',
      help: 'Processes holding a descriptor on a dead lxcfs file: a remount cannot fix them, they need a restart',
      registers,
    }),
  };
}
