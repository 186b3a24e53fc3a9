// Two doors, one rule: every pod goes through the webhook (a real AdmissionReview over HTTPS, its JSON
// patch applied strictly) and through `lxcfs-webhook inject` (the CLI on the same pod, as a file), and
// the two resulting pods, and the warnings each door gives, must be the same. Both call mutatePod; this
// proves nothing around it differs.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../../src/inject/pod.js';
import { fixturePath, readJsonFixture } from '../helpers/paths.js';
import { applyStrict, assertValidPod } from '../helpers/pod-check.js';
import { runCli } from '../helpers/run-cli.js';
import { send, startTestWebhook, type TestWebhook } from '../helpers/webhook.js';

interface Review {
  request: { uid: string; object: Pod; namespace: string };
  response?: { allowed: boolean; patch?: string; warnings?: string[] };
}

/** The pods: our fixtures, and the pod of a real AdmissionReview another injector's repository recorded. */
function pods(): Array<[string, Pod]> {
  const ours = readdirSync(fixturePath('pods'))
    .filter((n) => n.endsWith('.json'))
    .sort();
  const recorded = readJsonFixture<Review>('peers', 'ymping-admissionreview-v1-pod-create.json')
    .request.object;
  return [
    ...ours.map((n): [string, Pod] => [n, readJsonFixture<Pod>('pods', n)]),
    ['ymping-admissionreview-v1-pod-create.json', recorded],
  ];
}

interface Door {
  pod: Pod;
  warnings: string[];
}

async function throughWebhook(server: TestWebhook, pod: Pod): Promise<Door> {
  const review = readJsonFixture<Review>('peers', 'ymping-admissionreview-v1-pod-create.json');
  review.request.object = pod;
  review.request.namespace = pod.metadata?.namespace ?? review.request.namespace;
  const reply = await send(server.webhook.port, review, { ca: server.ca });
  assert.equal(reply.status, 200, reply.text);
  const answer = JSON.parse(reply.text) as Review;
  assert.equal(answer.response?.allowed, true);
  const patch = answer.response?.patch
    ? (JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as unknown[])
    : [];
  return { pod: applyStrict(pod, patch), warnings: answer.response?.warnings ?? [] };
}

/** The pod `inject` prints, and the warnings it prints on stderr (`<object>: warning: <text>`). */
async function throughInject(dir: string, name: string, pod: Pod): Promise<Door> {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(pod, null, 2));
  const result = await runCli(['inject', '-o', 'json', '-f', file]);
  assert.equal(result.code, 0, result.stderr);
  const warnings = result.stderr
    .split('\n')
    .flatMap((line) => /^.*?: warning: (.*)$/.exec(line)?.[1] ?? []);
  return { pod: JSON.parse(result.stdout) as Pod, warnings };
}

describe('the webhook and inject make the same pods', () => {
  let server: TestWebhook;
  const dir = mkdtempSync(join(tmpdir(), 'two-door-'));
  before(async () => {
    server = await startTestWebhook();
  });
  after(async () => {
    await server.webhook.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const all = pods();
  it('has pods of several shapes', () => assert.ok(all.length >= 4));
  for (const [name, pod] of all) {
    it(name, async () => {
      const viaWebhook = await throughWebhook(server, pod);
      const viaInject = await throughInject(dir, name, pod);
      assert.deepEqual(viaInject.pod, viaWebhook.pod);
      assert.deepEqual(
        viaInject.warnings,
        viaWebhook.warnings,
        'the same warnings through both doors',
      );
      assert.notDeepEqual(
        viaWebhook.pod,
        pod,
        'the pod was changed: a comparison of two no-ops would prove nothing',
      );
      assertValidPod(viaWebhook.pod);
    });
  }
});
