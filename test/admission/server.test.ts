// The webhook over real HTTPS on loopback: what the API server sends, what it must get back, and what
// a broken or hostile client gets. The content rules themselves are tested in review.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_FILES, DEFAULT_LXCFS_ROOT } from '../../src/config/defaults.js';
import { defaultSettings } from '../../src/inject/settings.js';
import type { Container, Pod, Volume } from '../../src/inject/pod.js';
import { readJsonFixture, repoRoot } from '../helpers/paths.js';
import { applyStrict, assertValidPod } from '../helpers/pod-check.js';
import {
  exchange,
  postRequest,
  rawConnection,
  sampleValue,
  send,
  startTestWebhook,
  type Reply,
  type TestWebhook,
} from '../helpers/webhook.js';
import { waitUntil } from '../helpers/wait.js';

interface Review {
  apiVersion: string;
  kind: string;
  request: Record<string, unknown> & { uid: string; object?: Pod | null; oldObject?: Pod | null };
}

const peerReview = () =>
  readJsonFixture<Review>('peers', 'ymping-admissionreview-v1-pod-create.json');
const exampleReview = () =>
  JSON.parse(readFileSync(join(repoRoot, 'examples', 'admission-review.json'), 'utf8')) as Review;

interface ReviewResponse {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  warnings?: string[];
}

/** Checks the envelope the API server insists on and returns the response. */
function responseOf(review: Review, reply: Reply): ReviewResponse {
  assert.equal(reply.status, 200, reply.text);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = JSON.parse(reply.text) as {
    apiVersion: string;
    kind: string;
    response: ReviewResponse;
  };
  assert.equal(body.apiVersion, review.apiVersion);
  assert.equal(body.kind, 'AdmissionReview');
  assert.equal(body.response.uid, review.request.uid);
  assert.equal(body.response.allowed, true);
  return body.response;
}

function patchOf(response: ReviewResponse): Array<{ op: string; path: string }> {
  assert.equal(response.patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as Array<{
    op: string;
    path: string;
  }>;
}

/** Applies the answer's patch the strict way and checks the pod the API server would store. */
function patchedPod(review: Review, reply: Reply): Pod {
  const pod = applyStrict(review.request.object!, patchOf(responseOf(review, reply)));
  assertValidPod(pod);
  return pod;
}

function assertLxcfsMounts(pod: Pod, container: Container): void {
  const volumes = (pod.spec?.volumes ?? []) as Volume[];
  for (const file of DEFAULT_FILES) {
    const mount = container.volumeMounts?.find((m) => m.mountPath === file);
    assert.ok(mount, `container ${container.name} has no mount at ${file}`);
    assert.equal(mount.readOnly, true);
    const volume = volumes.find((v) => v.name === mount.name) as
      { hostPath?: { path: string; type: string } } | undefined;
    assert.deepEqual(volume?.hostPath, { path: `${DEFAULT_LXCFS_ROOT}${file}`, type: 'File' });
  }
}

function assertUnchanged(review: Review, reply: Reply): void {
  const response = responseOf(review, reply);
  assert.equal(response.patch, undefined);
  assert.equal(response.patchType, undefined);
}

describe('webhook over HTTPS', () => {
  let test: TestWebhook;
  let idle: { socket: TLSSocket; firstHead: string };
  let silent: { socket: TLSSocket; closed: boolean };
  const post = (body: unknown, options: Partial<Parameters<typeof send>[2]> = {}) =>
    send(test.webhook.port, body, { ca: test.ca, ...options });

  before(async () => {
    test = await startTestWebhook();
    // For the keep-alive test at the end: one answered request, then silence while the others run.
    const socket = await rawConnection(test.webhook.port, test.ca);
    const first = await exchange(socket, postRequest(JSON.stringify(peerReview())));
    assert.match(first.head, /^HTTP\/1.1 200/);
    idle = { socket, firstHead: first.head };
    // For the test after it: a connection that completes the handshake and then never sends a byte.
    silent = { socket: await rawConnection(test.webhook.port, test.ca), closed: false };
    silent.socket
      .on('close', () => {
        silent.closed = true;
      })
      .on('error', () => undefined);
  });

  after(async () => {
    idle.socket.destroy();
    silent.socket.destroy();
    await test.webhook.stop();
  });

  it('injects the real v1 pod CREATE review: echoed envelope, strict patch, valid pod with lxcfs mounts', async () => {
    const review = peerReview();
    const pod = patchedPod(review, await post(review));
    assertLxcfsMounts(pod, pod.spec!.containers![0]!);
  });

  it('answers v1beta1 in v1beta1', async () => {
    const review = peerReview();
    review.apiVersion = 'admission.k8s.io/v1beta1';
    const pod = patchedPod(review, await post(review));
    assertLxcfsMounts(pod, pod.spec!.containers![0]!);
  });

  it('answers a dry-run review the same way and logs it as one', async () => {
    const review = peerReview();
    review.request.uid = 'dry-run-uid';
    review.request.dryRun = true;
    const pod = patchedPod(review, await post(review));
    assertLxcfsMounts(pod, pod.spec!.containers![0]!);
    const line = test.lines.find((l) => l.uid === 'dry-run-uid');
    assert.equal(line?.dryRun, true);
  });

  it('injects a controller pod with an empty namespace and only generateName', async () => {
    const review = exampleReview();
    const pod = review.request.object!;
    delete pod.metadata!.namespace;
    delete pod.metadata!.name;
    review.request.uid = 'generate-name-uid';
    review.request.name = '';
    const patched = patchedPod(review, await post(review));
    assertLxcfsMounts(patched, patched.spec!.containers![0]!);
    const line = test.lines.find((l) => l.uid === 'generate-name-uid');
    assert.equal(line?.namespace, 'lxcfs-demo');
    assert.equal(line?.pod, 'web-6b8f9d7c5d-*');
  });

  it('allows what is not a pod CREATE unchanged: other kinds, DELETE, plain UPDATE', async () => {
    const pod = peerReview().request.object!;
    const deployment = peerReview();
    deployment.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    deployment.request.resource = { group: 'apps', version: 'v1', resource: 'deployments' };
    deployment.request.object = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {},
    } as Pod;
    const deletion = peerReview();
    Object.assign(deletion.request, { operation: 'DELETE', object: null, oldObject: pod });
    const update = peerReview();
    Object.assign(update.request, { operation: 'UPDATE', oldObject: pod });
    for (const review of [deployment, deletion, update])
      assertUnchanged(review, await post(review));
  });

  it('mounts lxcfs files into the new container of a pods/ephemeralcontainers UPDATE, and nothing else', async () => {
    const created = peerReview();
    const running = patchedPod(created, await post(created));
    const debugged = structuredClone(running);
    debugged.spec!.ephemeralContainers = [
      { name: 'debugger', image: 'busybox:1.36', targetContainerName: 'nginx' } as Container,
    ];
    const review = peerReview();
    Object.assign(review.request, {
      operation: 'UPDATE',
      subResource: 'ephemeralcontainers',
      object: debugged,
      oldObject: running,
    });
    const reply = await post(review);
    const patch = patchOf(responseOf(review, reply));
    assert.ok(
      patch.every((op) => op.path.startsWith('/spec/ephemeralContainers/0/')),
      JSON.stringify(patch),
    );
    const pod = patchedPod(review, reply);
    assertLxcfsMounts(pod, pod.spec!.ephemeralContainers![0]!);
  });

  it('logs one JSON line per review with latency, and never the object', async () => {
    const review = peerReview();
    review.request.uid = 'log-line-uid';
    await post(review);
    const lines = test.lines.filter((l) => l.uid === 'log-line-uid');
    assert.equal(lines.length, 1);
    const [line] = lines;
    assert.equal(line!.msg, 'review');
    assert.equal(line!.result, 'injected');
    assert.equal(line!.status, 200);
    assert.equal(typeof line!.latencyMs, 'number');
    const text = JSON.stringify(line);
    assert.ok(!text.includes('nginx:1.21') && !text.includes('"spec"'), text);
  });

  it('keeps the answer small when annotations are huge: a 1 MiB value and hundreds of unknown container names', async () => {
    const review = peerReview();
    const names = Array.from({ length: 500 }, (_, i) => `missing-${i}`).join(',');
    review.request.object!.metadata!.annotations = {
      'lxcfs-webhook.io/exclude-containers': `${names},${'z'.repeat(1 << 20)}`,
    };
    const reply = await post(review);
    const warnings = responseOf(review, reply).warnings!;
    // 501 unknown names, and our status left out: the pod's own annotation is over 256 KiB.
    assert.ok(warnings.some((w) => /status annotation lxcfs-webhook.io\/status left out/.test(w)));
    assert.equal(warnings.at(-1), '… and 492 more');
    // 11 warnings of at most 120 characters plus the patch of one container: a few KiB, not megabytes.
    assert.ok(Buffer.byteLength(reply.text) < 8 * 1024, `${Buffer.byteLength(reply.text)} bytes`);
  });

  it('accepts application/json with a UTF-8 charset', async () => {
    const review = peerReview();
    patchedPod(review, await post(review, { contentType: 'application/json; charset=UTF-8' }));
  });

  it('answers 415 to another or a missing content type, saying what is expected', async () => {
    for (const contentType of [
      'text/plain',
      'application/yaml',
      'application/json; charset=latin1',
      null,
    ]) {
      const reply = await post(peerReview(), { contentType });
      assert.equal(reply.status, 415, String(contentType));
      assert.match(JSON.parse(reply.text).error, /Content-Type must be application\/json/);
    }
  });

  it('answers 400 to malformed JSON, naming the problem', async () => {
    for (const body of ['{"kind": "AdmissionReview",', 'not json', '']) {
      const reply = await post(body);
      assert.equal(reply.status, 400, body);
      assert.match(JSON.parse(reply.text).error, /request body is not valid JSON \(.+\)/);
    }
  });

  it('answers 400 to a review without request.uid, and to JSON that is not a review', async () => {
    const review = peerReview();
    delete (review.request as Partial<Review['request']>).uid;
    const missingUid = await post(review);
    assert.equal(missingUid.status, 400);
    assert.match(JSON.parse(missingUid.text).error, /request\.uid is missing/);
    const notReview = await post({ kind: 'Pod' });
    assert.equal(notReview.status, 400);
    assert.match(JSON.parse(notReview.text).error, /not an AdmissionReview/);
  });

  it('answers 404 to other paths and 405 to other methods on /mutate', async () => {
    const notFound = await post(peerReview(), { path: '/validate' });
    assert.equal(notFound.status, 404);
    assert.match(JSON.parse(notFound.text).error, /AdmissionReviews go to POST \/mutate/);
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const reply = await post(undefined, { method, contentType: null });
      assert.equal(reply.status, 405, method);
      assert.equal(reply.headers.allow, 'POST');
    }
  });

  it('answers 413 to a body over the limit without reading it, and keeps serving', async () => {
    const huge = Buffer.alloc(8 * 1024 * 1024 + 1, 0x20);
    const reply = await post(huge);
    assert.equal(reply.status, 413);
    assert.match(
      JSON.parse(reply.text).error,
      /larger than 8388608 bytes, this webhook.s limit; raise the limit/,
    );
    patchedPod(peerReview(), await post(peerReview()));
  });

  it('answers 413 to a chunked body that grows over the limit, and keeps serving', async () => {
    const small = await startTestWebhook({ maxRequestBytes: 64 * 1024 });
    try {
      const reply = await send(small.webhook.port, Buffer.alloc(200 * 1024, 0x20), {
        ca: small.ca,
        chunked: true,
      });
      assert.equal(reply.status, 413);
      assert.equal(reply.headers.connection, 'close');
      const review = peerReview();
      patchedPod(review, await send(small.webhook.port, review, { ca: small.ca }));
    } finally {
      await small.webhook.stop();
    }
  });

  it('answers 503 at once, unread, and closes, to a body that does not fit the shared budget; takes bodies again once it is given back', async () => {
    const KiB = 1024;
    const budgeted = await startTestWebhook({
      maxRequestBytes: 512 * KiB,
      maxRequestBytesInFlight: 768 * KiB,
    });
    const port = budgeted.webhook.port;
    const bytesInFlight = async () =>
      Number(
        /^lxcfs_webhook_request_bytes_in_flight (\d+)$/m.exec(
          await budgeted.webhook.metrics.registry.metrics(),
        )?.[1],
      );
    const head = (length: number) =>
      `POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    try {
      // A client that declares 500 KiB and sends 100: the budget holds all 500 until it ends.
      const hog = await rawConnection(port, budgeted.ca);
      hog.on('error', () => undefined);
      hog.write(head(500 * KiB) + ' '.repeat(100 * KiB));
      await sleep(200);
      assert.equal(await bytesInFlight(), 500 * KiB);

      // 300 KiB more does not fit: 503 at once, before the body is sent, and the connection closed.
      const started = Date.now();
      const refused = await rawConnection(port, budgeted.ca);
      refused.on('error', () => undefined);
      const closed = new Promise((resolve) => refused.once('close', resolve));
      const answer = await exchange(refused, head(300 * KiB));
      assert.match(answer.head, /^HTTP\/1.1 503 [^]*\r\nConnection: close\r\n/i);
      assert.doesNotMatch(answer.head, /Retry-After/i);
      assert.match(
        JSON.parse(answer.body).error,
        /^the webhook is busy: request bodies in flight hold 0\.5 MiB of the 0\.8 MiB it reads at once; the API server applies failurePolicy$/,
      );
      assert.ok(Date.now() - started < 2_000);
      await closed;
      // `Expect: 100-continue`: the body is never invited.
      const waiting = await rawConnection(port, budgeted.ca);
      waiting.on('error', () => undefined);
      const noContinue = await exchange(
        waiting,
        head(300 * KiB).replace('\r\n\r\n', '\r\nExpect: 100-continue\r\n\r\n'),
      );
      assert.match(noContinue.head, /^HTTP\/1.1 503 /);
      waiting.destroy();
      assert.equal(await bytesInFlight(), 500 * KiB);
      // A chunked body is counted as it arrives: refused once it passes the budget.
      const chunked = await send(port, Buffer.alloc(400 * KiB, 0x20), {
        ca: budgeted.ca,
        chunked: true,
      });
      assert.equal(chunked.status, 503);

      // A real review still fits beside the hog.
      patchedPod(peerReview(), await send(port, peerReview(), { ca: budgeted.ca }));

      // The hog goes away: its share comes back, and a 300 KiB review is read and answered.
      hog.destroy();
      const start = Date.now();
      while ((await bytesInFlight()) !== 0) {
        assert.ok(Date.now() - start < 10_000, 'budget given back');
        await sleep(50);
      }
      const padded = peerReview();
      padded.request.object!.metadata!.annotations = { padding: 'x'.repeat(300 * KiB) };
      assert.equal((await send(port, padded, { ca: budgeted.ca })).status, 200);
      assert.equal(await bytesInFlight(), 0);
    } finally {
      await budgeted.webhook.stop();
    }
  });

  it('gives back the share of a body whose connection is evicted for a new one', async () => {
    // One connection per address: a new one takes the place of the hog still sending its body.
    const KiB = 1024;
    const budgeted = await startTestWebhook({
      maxRequestBytes: 512 * KiB,
      maxRequestBytesInFlight: 768 * KiB,
      maxConnectionsPerPeer: 1,
    });
    const port = budgeted.webhook.port;
    const bytesInFlight = async () =>
      sampleValue(
        await budgeted.webhook.metrics.registry.metrics(),
        'lxcfs_webhook_request_bytes_in_flight',
      );
    try {
      const hog = await rawConnection(port, budgeted.ca);
      hog.on('error', () => undefined);
      const evicted = new Promise((resolve) => hog.once('close', resolve));
      hog.write(
        `POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${500 * KiB}\r\n\r\n` +
          ' '.repeat(100 * KiB),
      );
      await waitUntil('the hog holds its share', async () => (await bytesInFlight()) === 500 * KiB);
      const review = peerReview();
      patchedPod(review, await send(port, review, { ca: budgeted.ca }));
      await evicted;
      await waitUntil('the share given back', async () => (await bytesInFlight()) === 0);
      assert.equal(
        sampleValue(
          await budgeted.webhook.metrics.registry.metrics(),
          'lxcfs_webhook_connections_evicted_total{reason="peer-limit",phase="unfinished"}',
        ),
        1,
      );
    } finally {
      await budgeted.webhook.stop();
    }
  });

  it('allows the pod unchanged on a bug of ours, and logs the error with its stack', async () => {
    // Settings that break once armed: the review then fails inside the policy, as a bug would.
    let armed = false;
    const settings = new Proxy(defaultSettings, {
      get(target, key, receiver) {
        if (armed) throw new TypeError(`broken setting ${String(key)}`);
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const broken = await startTestWebhook({ settings });
    try {
      armed = true;
      const review = peerReview();
      const reply = await send(broken.webhook.port, review, { ca: broken.ca });
      assert.equal(reply.status, 200, reply.text);
      assertUnchanged(review, reply);
      const line = broken.lines.find((l) => l.msg === 'review');
      assert.equal(line?.level, 'error', JSON.stringify(line));
      assert.equal(line.reason, 'internal-error');
      const err = line.err as { type: string; message: string; stack: string };
      assert.equal(err.type, 'TypeError');
      assert.match(err.message, /^broken setting /);
      assert.match(err.stack, /\n {4}at /, 'the stack reaches the log');
    } finally {
      armed = false;
      await broken.webhook.stop();
    }
  });

  it('survives garbage, plain HTTP on the TLS port and clients that vanish mid-body', async () => {
    const garbage = await rawConnection(test.webhook.port, test.ca);
    const answer = await exchange(garbage, 'THIS IS NOT HTTP\r\n\r\n');
    assert.match(answer.head, /^HTTP\/1.1 400/);
    garbage.destroy();

    await new Promise<void>((resolve) => {
      const plain = tcpConnect(test.webhook.port, '127.0.0.1', () =>
        plain.write('POST /mutate HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      plain.on('error', () => resolve()).on('close', () => resolve());
    });

    const vanishing = await rawConnection(test.webhook.port, test.ca);
    vanishing.write(
      'POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"kind":',
    );
    await sleep(100);
    vanishing.destroy();

    patchedPod(peerReview(), await post(peerReview()));
  });

  // At the end: by now the connection opened in before() has been idle for a while.
  it('keeps an idle keep-alive connection longer than the API server does (90 s)', async () => {
    // The promise, in every response: longer than the 90 s the API server keeps an idle connection.
    const advertised = Number(/\r\nKeep-Alive: timeout=(\d+)/i.exec(idle.firstHead)?.[1]);
    assert.ok(advertised > 90, idle.firstHead);
    const again = await exchange(idle.socket, postRequest(JSON.stringify(peerReview())));
    assert.match(again.head, /^HTTP\/1.1 200/);
    // And the server holds to it: with the keep-alive shortened to 1 s, an idle connection still answers
    // after 0.6 s of silence, and the server closes it once it has been idle for longer than 1 s.
    const short = await startTestWebhook({ timeouts: { keepAliveMs: 1000 } });
    try {
      const socket = await rawConnection(short.webhook.port, short.ca);
      const first = await exchange(socket, postRequest(JSON.stringify(peerReview())));
      assert.match(first.head, /\r\nKeep-Alive: timeout=1$/im);
      await sleep(600);
      const kept = await exchange(socket, postRequest(JSON.stringify(peerReview())));
      assert.match(kept.head, /^HTTP\/1.1 200/);
      const idleSince = Date.now();
      let closedAfterMs = -1;
      socket
        .on('close', () => (closedAfterMs = Date.now() - idleSince))
        .on('error', () => undefined);
      await waitUntil('the server closing the idle connection', () => closedAfterMs >= 0, {
        timeoutMs: 5000,
      });
      assert.ok(closedAfterMs >= 900, `closed after ${closedAfterMs} ms of silence, before 1 s`);
    } finally {
      await short.webhook.stop();
    }
  });

  it('closes a connection that never sends a request (after 15 s)', async () => {
    await waitUntil('the silent connection closed by the server', () => silent.closed, {
      timeoutMs: 60_000,
    });
  });
});
