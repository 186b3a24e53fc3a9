// What the NetworkPolicies of an install (deploy/components/network-policy, the chart's
// networkPolicy values) must say, checked on the rendered objects: each policy selects its component's
// pods and no other, names ports those pods have, admits the webhook port only from the given peers and
// the health port only from the metrics peers, and allows no egress.
import assert from 'node:assert/strict';
import { command as agentCommand } from '../../src/cli/agent.js';
import { command as serveCommand } from '../../src/cli/serve.js';
import { find, type K8sObject } from './render.js';

type Peer = Record<string, unknown>;

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The port a NetworkPolicy port entry admits on `container`, by name or number. */
function containerPort(container: any, port: string | number): number {
  const found = container.ports.find((p: any) => p.name === port || p.containerPort === port);
  assert.ok(found, `NetworkPolicy port ${port} is a port of container ${container.name}`);
  return found.containerPort as number;
}

/** Ingress rules as [container port, peers or 'any'] pairs. */
function rulesOf(policy: K8sObject, container: any): Array<[number, Peer[] | 'any']> {
  return (policy.spec.ingress as any[]).flatMap((rule) =>
    (rule.ports as any[]).map((p): [number, Peer[] | 'any'] => {
      assert.equal(p.protocol, 'TCP');
      return [containerPort(container, p.port), rule.from?.length ? rule.from : 'any'];
    }),
  );
}

export function checkNetworkPolicies(
  objects: K8sObject[],
  expected: { apiServer: Peer[] | 'any'; metrics: Peer[] },
): void {
  const webhook = find(objects, 'Deployment', 'lxcfs-webhook');
  const agent = find(objects, 'DaemonSet', 'lxcfs-agent');
  const serve = serveCommand.parse(webhook.spec.template.spec.containers[0].args.slice(1));
  const agentOptions = agentCommand.parse(agent.spec.template.spec.containers[0].args.slice(1));
  const policies = objects.filter(
    (o) => o.kind === 'NetworkPolicy' && o.metadata.annotations?.['helm.sh/hook'] === undefined,
  );
  assert.deepEqual(policies.map((p) => p.metadata.name).sort(), ['lxcfs-agent', 'lxcfs-webhook']);
  for (const [policy, workload, other] of [
    [find(policies, 'NetworkPolicy', 'lxcfs-webhook'), webhook, agent],
    [find(policies, 'NetworkPolicy', 'lxcfs-agent'), agent, webhook],
  ] as const) {
    assert.equal(policy.metadata.namespace, workload.metadata.namespace);
    assert.ok(
      matches(policy.spec.podSelector.matchLabels, workload.spec.template.metadata.labels),
      `${policy.metadata.name} selects its pods`,
    );
    assert.ok(
      !matches(policy.spec.podSelector.matchLabels, other.spec.template.metadata.labels),
      `${policy.metadata.name} selects no other pods`,
    );
    assert.deepEqual(policy.spec.policyTypes, ['Ingress', 'Egress']);
    assert.equal(
      policy.spec.egress,
      undefined,
      `${policy.metadata.name}: no egress rule, so no connection out`,
    );
  }
  const health = expected.metrics.length > 0 ? [[serve.config.healthPort, expected.metrics]] : [];
  assert.deepEqual(
    rulesOf(
      find(policies, 'NetworkPolicy', 'lxcfs-webhook'),
      webhook.spec.template.spec.containers[0],
    ),
    [[serve.config.port, expected.apiServer], ...health],
    'the webhook port from the API server, the health port from the scrapers',
  );
  assert.deepEqual(
    rulesOf(find(policies, 'NetworkPolicy', 'lxcfs-agent'), agent.spec.template.spec.containers[0]),
    expected.metrics.length > 0 ? [[agentOptions.healthPort, expected.metrics]] : [],
    'the agent: only its health port, only from the scrapers',
  );
}
