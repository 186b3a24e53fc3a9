// The checks every rendered install shares, whatever provides the certificate: each names what would
// fail on a cluster if it did not hold.
import assert from 'node:assert/strict';
import {
  AGENT_PRIORITY_CLASS,
  ANNOTATIONS,
  DEFAULT_LXCFS_ROOT,
  INSTALL,
  MUTATE_PATH,
  POD_LABEL,
  POD_LABEL_DISABLED,
  WEBHOOK_IN_FLIGHT_TIMEOUT_MS,
  WEBHOOK_PRIORITY_CLASS,
} from '../../src/config/defaults.js';
import { EXCLUDED_NAMESPACES, type SelectionOptions } from '../../src/audit/selection.js';
import { command as agentCommand } from '../../src/cli/agent.js';
import { command as serveCommand } from '../../src/cli/serve.js';
import { validateObject } from '../helpers/k8s-schema.js';
import { find, type K8sObject } from './render.js';
import {
  checkApiServerValidation,
  checkEntriesPartitionPods,
  checkSameAsSelectionModule,
} from './webhook-configuration.js';

const NO_SCHEMA_HERE = new Set(['SecurityContextConstraints']);

function matches(selector: Record<string, string>, labels: Record<string, string> = {}): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Checks every rendered install shares; overlays add their own below. */
export function checkInstall(
  objects: K8sObject[],
  options: SelectionOptions = { mountLxcfsLabel: false },
): void {
  for (const object of objects) {
    if (!NO_SCHEMA_HERE.has(object.kind)) validateObject(object);
  }
  const ns = find(objects, 'Namespace', INSTALL.namespace).metadata.name;
  for (const o of objects.filter(
    (o) =>
      ![
        'Namespace',
        'MutatingWebhookConfiguration',
        'ClusterRole',
        'SecurityContextConstraints',
      ].includes(o.kind),
  )) {
    assert.equal(
      o.metadata.namespace,
      ns,
      `${o.kind}/${o.metadata.name} is in the install's namespace`,
    );
  }

  const deployment = find(objects, 'Deployment', 'lxcfs-webhook');
  const podSpec = deployment.spec.template.spec;
  const podLabels = deployment.spec.template.metadata.labels;
  const webhook = podSpec.containers[0];
  assert.equal(webhook.args[0], 'serve');
  const serve = serveCommand.parse(webhook.args.slice(1)); // the real parser: a typo'd flag throws here
  assert.ok(serve.tlsFiles, 'the webhook serves the mounted certificate, not an in-memory one');

  // Service → pods → port → --port
  const service = find(objects, 'Service', INSTALL.service);
  assert.ok(matches(service.spec.selector, podLabels), 'Service selector matches the webhook pods');
  assert.ok(
    matches(deployment.spec.selector.matchLabels, podLabels),
    'Deployment selector matches its template',
  );
  const servicePort = service.spec.ports[0];
  const containerPort = webhook.ports.find(
    (p: any) => p.name === servicePort.targetPort || p.containerPort === servicePort.targetPort,
  );
  assert.ok(containerPort, `Service targetPort ${servicePort.targetPort} is a container port`);
  assert.equal(containerPort.containerPort, serve.config.port, 'container port = --port');
  assert.equal(servicePort.port, 443);

  // Probes → health port → --health-port
  for (const probe of [webhook.readinessProbe, webhook.livenessProbe]) {
    const port = webhook.ports.find((p: any) => p.name === probe.httpGet.port);
    assert.equal(port.containerPort, serve.config.healthPort, 'probe port = --health-port');
  }
  assert.equal(webhook.readinessProbe.httpGet.path, '/readyz');
  assert.equal(webhook.livenessProbe.httpGet.path, '/livez');

  // TLS files live in the volume of the certificate Secret
  const tlsMount = webhook.volumeMounts.find((m: any) =>
    serve.tlsFiles!.certFile.startsWith(`${m.mountPath}/`),
  );
  assert.ok(tlsMount, '--tls-cert is inside a mounted volume');
  assert.ok(
    serve.tlsFiles!.keyFile.startsWith(`${tlsMount.mountPath}/`),
    '--tls-key is in the same volume',
  );
  const tlsVolume = podSpec.volumes.find((v: any) => v.name === tlsMount.name);
  assert.equal(tlsVolume.secret.secretName, INSTALL.tlsSecret);

  // Security defaults and shutdown
  assert.equal(podSpec.automountServiceAccountToken, false);
  assert.equal(podSpec.securityContext.runAsNonRoot, true);
  assert.equal(webhook.securityContext.readOnlyRootFilesystem, true);
  assert.equal(webhook.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(webhook.securityContext.capabilities.drop, ['ALL']);
  assert.ok(
    (serve.shutdownGraceMs + WEBHOOK_IN_FLIGHT_TIMEOUT_MS) / 1000 <=
      podSpec.terminationGracePeriodSeconds,
    'drain fits in the grace period',
  );
  assert.equal(deployment.spec.replicas, 2);
  assert.ok(podSpec.topologySpreadConstraints.length > 0);
  assert.equal(
    podLabels[POD_LABEL],
    POD_LABEL_DISABLED,
    'the webhook is never injected into itself',
  );
  const pdb = find(objects, 'PodDisruptionBudget', 'lxcfs-webhook');
  assert.ok(matches(pdb.spec.selector.matchLabels, podLabels));
  assert.equal(pdb.spec.minAvailable, 1);

  // MutatingWebhookConfiguration → Service, documented labels, safety settings
  const mwc = find(objects, 'MutatingWebhookConfiguration', INSTALL.webhookConfiguration);
  assert.deepEqual(
    mwc.webhooks.map((h: any) => h.name),
    INSTALL.webhooks,
    'webhook names match what `certs` patches',
  );
  for (const hook of mwc.webhooks) {
    assert.deepEqual(hook.clientConfig.service, {
      name: service.metadata.name,
      namespace: ns,
      path: MUTATE_PATH,
      port: servicePort.port,
    });
    assert.equal(hook.sideEffects, 'None');
    assert.equal(hook.reinvocationPolicy, 'IfNeeded');
    assert.ok(hook.timeoutSeconds <= 10);
    assert.deepEqual(hook.admissionReviewVersions, ['v1', 'v1beta1']);
    assert.deepEqual(
      hook.rules.map((r: any) => [r.operations, r.resources]),
      [
        [['CREATE'], ['pods']],
        [['UPDATE'], ['pods/ephemeralcontainers']],
      ],
    );
    // (The mount-lxcfs entry, when off, also has a DoesNotExist requirement on the same key.)
    const excluded = hook.namespaceSelector.matchExpressions.find(
      (e: any) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn',
    );
    assert.ok(excluded, `${hook.name} excludes namespaces by name`);
    for (const name of [...EXCLUDED_NAMESPACES, ns])
      assert.ok(excluded.values.includes(name), `${hook.name} excludes ${name}`);
    const psa = hook.namespaceSelector.matchExpressions.find(
      (e: any) => e.key === 'pod-security.kubernetes.io/enforce',
    );
    assert.deepEqual([psa.operator, psa.values], ['NotIn', ['baseline', 'restricted']]);
  }
  // The name the API server checks the certificate for is the one serve checks it for at every load.
  assert.equal(
    serve.tlsServerName,
    `${service.metadata.name}.${ns}.svc`,
    '--tls-server-name is <service>.<namespace>.svc',
  );
  for (const certificate of objects.filter(
    (o) => o.kind === 'Certificate' && o.spec?.secretName === INSTALL.tlsSecret,
  )) {
    assert.ok(
      certificate.spec.dnsNames.includes(serve.tlsServerName),
      `Certificate ${certificate.metadata.name} is issued for --tls-server-name`,
    );
  }
  // Selectors and failure policies are src/audit/selection.ts's, never overlap, and pass the API server's validation.
  checkSameAsSelectionModule(mwc, options);
  checkEntriesPartitionPods(mwc, options);
  checkApiServerValidation(mwc);
  assert.equal(
    podSpec.priorityClassName,
    WEBHOOK_PRIORITY_CLASS,
    'the webhook starts before, and is evicted after, ordinary workloads',
  );
  assert.ok(ANNOTATIONS.inject === POD_LABEL, 'label and annotation share one key');

  // DaemonSet → anchor paths ↔ agent flags ↔ webhook's --lxcfs-root
  const daemonSet = find(objects, 'DaemonSet', INSTALL.agentDaemonSet); // the name check node's hints give
  const agentPod = daemonSet.spec.template.spec;
  const agent = agentPod.containers[0];
  assert.equal(agent.args[0], 'agent');
  const agentOptions = agentCommand.parse(agent.args.slice(1));
  const root = agentOptions.lxcfsRoot;
  assert.equal(root, DEFAULT_LXCFS_ROOT);
  assert.equal(
    serve.config.settings.lxcfsRoot,
    root,
    'the webhook injects hostPaths from the directory the agent serves',
  );
  const anchorMount = agent.volumeMounts.find((m: any) => m.mountPath === root);
  assert.ok(anchorMount, '--lxcfs-root is a mounted volume');
  assert.equal(anchorMount.mountPropagation, 'Bidirectional', 'the anchor reaches the host');
  const anchorVolume = agentPod.volumes.find((v: any) => v.name === anchorMount.name);
  assert.equal(
    anchorVolume.hostPath.path,
    root,
    "host path = container path, so pods' hostPaths match",
  );
  assert.ok(
    !agent.volumeMounts.some(
      (m: any) => agentOptions.fuseMount.startsWith(`${m.mountPath}/`) && m.mountPropagation,
    ),
    '--fuse-mount stays private to the agent: a dead FUSE mount must never propagate',
  );
  assert.equal(agentOptions.proc, '/proc');
  assert.equal(agentOptions.uninstall, false);
  assert.equal(agentPod.hostPID, true);
  assert.equal(agent.securityContext.privileged, true);
  assert.equal(agentPod.priorityClassName, AGENT_PRIORITY_CLASS);
  // Where critical priority classes need a quota outside kube-system, ours opens it for both.
  const quota = find(objects, 'ResourceQuota', 'lxcfs-critical-pods');
  assert.deepEqual(quota.spec.scopeSelector.matchExpressions, [
    {
      scopeName: 'PriorityClass',
      operator: 'In',
      values: [WEBHOOK_PRIORITY_CLASS, AGENT_PRIORITY_CLASS],
    },
  ]);
  assert.ok(
    Number(quota.spec.hard.pods) >= 15_000,
    'room for an agent on every node of the largest clusters, plus the webhook',
  );
  assert.deepEqual(agentPod.tolerations, [{ operator: 'Exists' }]);
  assert.equal(agentPod.nodeSelector['kubernetes.io/os'], 'linux');
  assert.deepEqual(daemonSet.spec.updateStrategy, {
    type: 'RollingUpdate',
    rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
  });
  assert.ok(agentPod.terminationGracePeriodSeconds >= 30);
  for (const probe of [agent.readinessProbe, agent.livenessProbe]) {
    const port = agent.ports.find((p: any) => p.name === probe.httpGet.port);
    assert.equal(port.containerPort, agentOptions.healthPort, 'agent probe port = --health-port');
  }
  assert.ok(matches(daemonSet.spec.selector.matchLabels, daemonSet.spec.template.metadata.labels));
  assert.ok(
    !matches(service.spec.selector, daemonSet.spec.template.metadata.labels),
    'the Service never routes to agents',
  );

  // No API access anywhere: no token, no Role beyond what an overlay documents
  for (const sa of objects.filter((o) => o.kind === 'ServiceAccount'))
    assert.equal(sa.automountServiceAccountToken, false);
}

/**
 * The CA the webhook reads at `--client-ca`, as its pod sees the file: the flag's path, the container's
 * volume mount above it, and the ConfigMap behind that volume.
 */
export function mountedClientCa(objects: K8sObject[]): string {
  const pod = find(objects, 'Deployment', 'lxcfs-webhook').spec.template.spec;
  const file = serveCommand.parse(pod.containers[0].args.slice(1)).config.clientCaFile;
  assert.ok(file, 'serve has --client-ca');
  const mount = pod.containers[0].volumeMounts.find((m: any) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount, '--client-ca is in a mounted volume');
  const volume = pod.volumes.find((v: any) => v.name === mount.name);
  const configMap = find(objects, 'ConfigMap', volume.configMap.name);
  return configMap.data[file.slice(mount.mountPath.length + 1)];
}
