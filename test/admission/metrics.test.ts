// The health port of a running webhook: probes, and metrics that move with the reviews it answers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../../src/inject/pod.js';
import { readJsonFixture } from '../helpers/paths.js';
import {
  getHealth,
  sampleValue,
  send,
  startTestWebhook,
  type TestWebhook,
} from '../helpers/webhook.js';

interface Review {
  apiVersion: string;
  kind: string;
  request: { uid: string; object: Pod };
}

const peerReview = () =>
  readJsonFixture<Review>('peers', 'ymping-admissionreview-v1-pod-create.json');

describe('health port', () => {
  let test: TestWebhook;
  const scrape = async () => {
    const reply = await getHealth(test.webhook.healthPort, '/metrics');
    assert.equal(reply.status, 200);
    return reply.text;
  };
  const review = (body: unknown, contentType?: string) =>
    send(test.webhook.port, body, { ca: test.ca, contentType });

  before(async () => {
    test = await startTestWebhook();
  });
  after(() => test.webhook.stop());

  it('answers /livez and /readyz, and 404 elsewhere', async () => {
    assert.deepEqual(await getHealth(test.webhook.healthPort, '/livez'), {
      status: 200,
      text: 'ok\n',
    });
    assert.deepEqual(await getHealth(test.webhook.healthPort, '/readyz'), {
      status: 200,
      text: 'ok\n',
    });
    const other = await getHealth(test.webhook.healthPort, '/healthz');
    assert.equal(other.status, 404);
    assert.match(other.text, /try \/livez, \/readyz or \/metrics/);
  });

  it('counts requests by result and reason, patches, skips and latency', async () => {
    const before = await scrape();

    assert.equal((await review(peerReview())).status, 200);

    const optedOut = peerReview();
    optedOut.request.object.metadata!.labels = { 'lxcfs-webhook.io/inject': 'disabled' };
    assert.equal((await review(optedOut)).status, 200);

    const conflicting = peerReview();
    conflicting.request.object.spec!.containers![0]!.volumeMounts!.push({
      name: 'default-token-46sr4',
      mountPath: '/proc/meminfo',
    });
    assert.equal((await review(conflicting)).status, 200);

    assert.equal((await review(peerReview(), 'text/plain')).status, 415);

    const now = await scrape();
    const moved = (sample: string) => sampleValue(now, sample) - sampleValue(before, sample);
    assert.equal(moved('lxcfs_webhook_requests_total{result="injected",reason=""}'), 2);
    assert.equal(moved('lxcfs_webhook_requests_total{result="skipped",reason="opted-out"}'), 1);
    assert.equal(
      moved('lxcfs_webhook_requests_total{result="rejected",reason="unsupported-media-type"}'),
      1,
    );
    assert.equal(moved('lxcfs_webhook_patches_total'), 2);
    assert.equal(moved('lxcfs_webhook_pod_skips_total{reason="opted-out"}'), 1);
    assert.equal(moved('lxcfs_webhook_file_skips_total{reason="mount-path-conflict"}'), 1);
    assert.equal(moved('lxcfs_webhook_request_duration_seconds_count'), 4);
    // The first bucket is below Kubernetes' 5 ms, where this webhook's latency actually is.
    assert.match(now, /^lxcfs_webhook_request_duration_seconds_bucket\{le="0.0005"\} \d+$/m);
  });

  it('exports the certificate expiry (as a time and as seconds left), body bytes in flight and the default process metrics under the same prefix', async () => {
    const text = await scrape();
    const expiry = sampleValue(text, 'lxcfs_webhook_tls_certificate_expiry_timestamp_seconds');
    assert.equal(expiry, test.webhook.keyPair().notAfter.getTime() / 1000);
    const secondsLeft = sampleValue(text, 'lxcfs_webhook_certificate_expiry_seconds');
    assert.ok(
      Math.abs(secondsLeft - (expiry - Date.now() / 1000)) < 5,
      `certificate_expiry_seconds ${secondsLeft}`,
    );
    assert.equal(sampleValue(text, 'lxcfs_webhook_request_bytes_in_flight'), 0);
    assert.ok(sampleValue(text, 'lxcfs_webhook_process_resident_memory_bytes') > 0);
    assert.ok(
      !/^(?!lxcfs_webhook_|#|$)/m.test(text),
      'every metric name starts with lxcfs_webhook_',
    );
  });

  it('reports not ready once draining, while staying live', async () => {
    test.webhook.startDraining();
    assert.equal((await getHealth(test.webhook.healthPort, '/readyz')).status, 503);
    assert.equal((await getHealth(test.webhook.healthPort, '/livez')).status, 200);
  });
});
