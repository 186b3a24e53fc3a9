// The README's "Security" section, run: the NetworkPolicy component on every overlay and in the README's
// example overlay, and client certificates end to end: the README's openssl commands make the CA and the
// API server's certificate, its example overlay mounts the CA for `serve --client-ca`, and a real
// `serve` with those flags lets curl in with the certificate and refuses it at the handshake without.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { createCA, issueServingCert } from '../../src/certs/authority.js';
import { INSTALL } from '../../src/config/defaults.js';
import { repoRoot } from '../helpers/paths.js';
import { readmeCommands, readmeExample, readmeFile } from '../helpers/readme.js';
import { HOST, startServeOn, writeKeyPairFiles } from '../helpers/webhook.js';
import { waitUntil } from '../helpers/wait.js';
import { checkInstall, mountedClientCa } from './check-install.js';
import { checkNetworkPolicies } from './network-policy.js';
import { kustomize, kustomizeWithComponent } from './render.js';

/** A copy of deploy/ with the README's example as the kustomization of deploy/overlays/mine/. */
function exampleOverlay(example: string): { dir: string; remove: () => void } {
  const work = mkdtempSync(join(tmpdir(), 'lxcfs-security-'));
  cpSync(join(repoRoot, 'deploy'), join(work, 'deploy'), { recursive: true });
  const dir = join(work, 'deploy', 'overlays', 'mine');
  mkdirSync(dir);
  writeFileSync(join(dir, 'kustomization.yaml'), readmeExample(example));
  return { dir, remove: () => rmSync(work, { recursive: true, force: true }) };
}

describe('deploy/components/network-policy', () => {
  for (const overlay of ['cert-manager', 'openshift']) {
    it(`on ${overlay}: valid objects; the webhook port from any source until set, health ports from the node only, no egress`, () => {
      const work = mkdtempSync(join(tmpdir(), 'lxcfs-np-'));
      after(() => rmSync(work, { recursive: true, force: true }));
      const objects = kustomizeWithComponent(
        join(repoRoot, 'deploy', 'overlays', overlay),
        join(repoRoot, 'deploy', 'components', 'network-policy'),
        work,
      );
      checkInstall(objects);
      checkNetworkPolicies(objects, { apiServer: 'any', metrics: [] });
    });
  }

  it("the README's example overlay admits the API server's addresses on the webhook port and the monitoring namespace on the health ports", () => {
    const { dir, remove } = exampleOverlay('network-policy kustomization');
    try {
      const objects = kustomize(dir);
      checkInstall(objects);
      const values = parse(readmeFile('network-policy.yaml')) as {
        networkPolicy: { apiServer: object[]; metrics: object[] };
      };
      checkNetworkPolicies(objects, {
        apiServer: values.networkPolicy.apiServer as never,
        metrics: values.networkPolicy.metrics as never,
      });
    } finally {
      remove();
    }
  });
});

describe('client certificates, as the README sets them up', () => {
  const { dir, remove } = exampleOverlay('client-certificates kustomization');
  after(remove);
  // The README's openssl commands, run where its example overlay expects client-ca.crt.
  const openssl = readmeCommands('openssl');
  for (const line of openssl) execFileSync('sh', ['-c', line], { cwd: dir, stdio: 'pipe' });
  const apiServerCert = 'apiserver-webhook-client.crt';
  const apiServerKey = 'apiserver-webhook-client.key';

  it('the openssl commands make a CA and a client certificate (clientAuth) that it signed', () => {
    assert.equal(openssl.length, 2);
    const verify = spawnSync(
      'openssl',
      ['verify', '-CAfile', 'client-ca.crt', '-purpose', 'sslclient', apiServerCert],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(verify.status, 0, verify.stderr);
  });

  it('the example overlay mounts the CA where --client-ca reads it', () => {
    const objects = kustomize(dir);
    checkInstall(objects);
    assert.equal(mountedClientCa(objects), readFileSync(join(dir, 'client-ca.crt'), 'utf8'));
  });

  it("the API server's admission configuration names a kubeconfig whose user is the webhook's host, with the certificate made above", () => {
    const admission = parse(readmeFile('/etc/kubernetes/admission/admission-config.yaml'));
    assert.equal(admission.apiVersion, 'apiserver.config.k8s.io/v1');
    assert.equal(admission.kind, 'AdmissionConfiguration');
    const plugin = admission.plugins.find((p: any) => p.name === 'MutatingAdmissionWebhook');
    assert.deepEqual(
      [plugin.configuration.apiVersion, plugin.configuration.kind],
      ['apiserver.config.k8s.io/v1', 'WebhookAdmissionConfiguration'],
    );
    assert.equal(
      plugin.configuration.kubeConfigFile,
      '/etc/kubernetes/admission/webhook-kubeconfig.yaml',
    );
    const kubeconfig = parse(readmeFile(plugin.configuration.kubeConfigFile));
    // k8s.io/apiserver's authentication info resolver looks a service's host up as `<name>.<namespace>.svc`
    // (with `:443`, then without it).
    const [user] = kubeconfig.users;
    assert.equal(user.name, `${INSTALL.service}.${INSTALL.namespace}.svc`);
    assert.equal(basename(user.user['client-certificate']), apiServerCert);
    assert.equal(basename(user.user['client-key']), apiServerKey);
  });

  it("serve with the example's --client-ca answers curl with the API server's certificate, and refuses it at the handshake without", async () => {
    const serverCa = join(dir, 'serving');
    mkdirSync(serverCa);
    const authority = await createCA({ commonName: 'serving CA', validDays: 1 });
    const pair = await issueServingCert(authority, ['localhost', HOST], { validDays: 1 });
    writeFileSync(join(serverCa, 'ca.crt'), authority.certPem);
    const serve = await startServeOn(writeKeyPairFiles(serverCa, pair), [
      '--client-ca',
      join(dir, 'client-ca.crt'),
    ]);
    try {
      const curl = (...args: string[]) =>
        spawnSync(
          'curl',
          [
            '-sS',
            '--cacert',
            join(serverCa, 'ca.crt'),
            '-H',
            'Content-Type: application/json',
            '--data',
            `@${join(repoRoot, 'examples', 'admission-review.json')}`,
            ...args,
            `https://${HOST}:${serve.port}/mutate?timeout=5s`,
          ],
          { cwd: dir, encoding: 'utf8' },
        );
      const allowed = curl('--cert', apiServerCert, '--key', apiServerKey);
      assert.equal(allowed.status, 0, allowed.stderr);
      assert.equal(JSON.parse(allowed.stdout).response.allowed, true);
      const refused = curl();
      assert.notEqual(refused.status, 0, 'no answer without a client certificate');
      assert.equal(refused.stdout, '');
      // The README's command that lists where reviews come from, on serve's real log lines.
      await waitUntil("the review's log line", () => serve.lines.some((l) => l.msg === 'review'));
      const logs = serve.lines.map((l) => JSON.stringify(l)).join('\n');
      const filter = /jq -r '([^']+)'/.exec(
        readmeCommands('kubectl').find((l) => l.includes('.peer')) ?? '',
      )?.[1];
      assert.ok(filter, 'the README lists peers with jq');
      assert.equal(
        execFileSync('jq', ['-r', filter], { input: logs, encoding: 'utf8' }).trim(),
        HOST,
      );
    } finally {
      serve.child.kill('SIGTERM');
      assert.deepEqual(await serve.exit, { code: 0, signal: null });
    }
  });
});
