// The AdmissionReview contract as plain function calls; the HTTPS transport has its own tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reviewAdmission, type ReviewResult } from '../../src/admission/review.js';
import { ECHO_MAX_CHARS, WARNING_MAX_CHARS, WARNING_MAX_COUNT } from '../../src/config/defaults.js';
import type { Pod } from '../../src/inject/pod.js';
import { defaultSettings } from '../../src/inject/settings.js';
import { readJsonFixture } from '../helpers/paths.js';
import { applyStrict, assertValidPod } from '../helpers/pod-check.js';

interface Review {
  apiVersion: string;
  kind: string;
  request: Record<string, unknown> & { uid: string; object?: Pod; oldObject?: Pod };
}

const peerReview = () =>
  readJsonFixture<Review>('peers', 'ymping-admissionreview-v1-pod-create.json');

function podReview(
  pod: Pod,
  overrides: Partial<Review['request']> = {},
  apiVersion = 'admission.k8s.io/v1',
): Review {
  return {
    apiVersion,
    kind: 'AdmissionReview',
    request: {
      uid: 'b2d4f1e6-3c5a-4f7e-8a9b-0c1d2e3f4a5b',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: pod,
      ...overrides,
    },
  };
}

/** The AdmissionReview a result answers with; fails the test for an invalid one. */
function answered(result: ReviewResult): Record<string, unknown> {
  assert.equal(result.kind, 'answer', result.kind === 'invalid' ? result.problem : '');
  return result.kind === 'answer' ? result.review : {};
}

function problemOf(result: ReviewResult): string {
  assert.equal(result.kind, 'invalid');
  return result.kind === 'invalid' ? result.problem : '';
}

function responseOf(body: Record<string, unknown>): {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  warnings?: string[];
} {
  return body.response as never;
}

function patchOf(body: Record<string, unknown>): unknown[] {
  const { patch, patchType } = responseOf(body);
  assert.equal(patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(patch!, 'base64').toString('utf8')) as unknown[];
}

describe('reviewAdmission', () => {
  it('answers a real v1 pod CREATE with an allowed, patched response echoing the uid', () => {
    const review = peerReview();
    const answer = reviewAdmission(review, defaultSettings);
    assert.equal(answer.kind, 'answer');
    assert.equal(answered(answer).apiVersion, 'admission.k8s.io/v1');
    assert.equal(answered(answer).kind, 'AdmissionReview');
    assert.equal(responseOf(answered(answer)).uid, review.request.uid);
    assert.equal(responseOf(answered(answer)).allowed, true);
    assertValidPod(applyStrict(review.request.object!, patchOf(answered(answer))));
    assert.equal(answer.log.result, 'injected');
  });

  it('answers v1beta1 in v1beta1', () => {
    const review = peerReview();
    review.apiVersion = 'admission.k8s.io/v1beta1';
    const answer = reviewAdmission(review, defaultSettings);
    assert.equal(answered(answer).apiVersion, 'admission.k8s.io/v1beta1');
    assert.ok(patchOf(answered(answer)).length > 0);
  });

  it('gives a dry-run request the same answer and logs that it was one', () => {
    const review = peerReview();
    const normal = reviewAdmission(review, defaultSettings);
    review.request.dryRun = true;
    const dry = reviewAdmission(review, defaultSettings);
    assert.deepEqual(answered(dry), answered(normal));
    assert.equal(dry.log.dryRun, true);
  });

  it('uses request.namespace and generateName for pods made by controllers', () => {
    const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    const answer = reviewAdmission(
      podReview(pod, { namespace: 'shop', name: '' }),
      defaultSettings,
    );
    assert.equal(answer.log.namespace, 'shop');
    assert.equal(answer.log.pod, 'web-7d9c6b5f4-*');
    assertValidPod(applyStrict(pod, patchOf(answered(answer))));
  });

  it('patches only the new ephemeral container on UPDATE pods/ephemeralcontainers', () => {
    const created = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    const running = applyStrict(
      created,
      patchOf(answered(reviewAdmission(podReview(created), defaultSettings))),
    );
    const debugged = structuredClone(running);
    debugged.spec!.ephemeralContainers = [
      { name: 'debugger', image: 'busybox:1.36', targetContainerName: 'web' },
    ];
    const answer = reviewAdmission(
      podReview(debugged, {
        operation: 'UPDATE',
        subResource: 'ephemeralcontainers',
        oldObject: running,
      }),
      defaultSettings,
    );
    const patch = patchOf(answered(answer)) as Array<{ path: string }>;
    assert.deepEqual(
      [...new Set(patch.map((op) => op.path))],
      ['/spec/ephemeralContainers/0/volumeMounts'],
    );
  });

  it('allows without a patch whatever it does not mutate', () => {
    const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    const cases: Array<[string, Review, string]> = [
      [
        'a ConfigMap',
        podReview({ kind: 'ConfigMap' } as Pod, {
          kind: { group: '', version: 'v1', kind: 'ConfigMap' },
          resource: { group: '', version: 'v1', resource: 'configmaps' },
        }),
        'not-a-pod',
      ],
      [
        'a Deployment',
        podReview(pod, {
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          resource: { group: 'apps', version: 'v1', resource: 'deployments' },
        }),
        'not-a-pod',
      ],
      ['a pod UPDATE', podReview(pod, { operation: 'UPDATE', oldObject: pod }), 'operation'],
      [
        'a pod DELETE',
        podReview(pod, { operation: 'DELETE', object: undefined, oldObject: pod }),
        'operation',
      ],
      [
        'a pods/status UPDATE',
        podReview(pod, { operation: 'UPDATE', subResource: 'status' }),
        'operation',
      ],
      ['a CREATE with no object', podReview(pod, { object: undefined }), 'no-object'],
      ['a CREATE whose object is a string', podReview('pod' as never), 'no-object'],
    ];
    for (const [name, review, reason] of cases) {
      const answer = reviewAdmission(review, defaultSettings);
      assert.equal(answer.kind, 'answer', name);
      assert.deepEqual(answered(answer).response, { uid: review.request.uid, allowed: true }, name);
      assert.equal(answer.log.reason, reason, name);
    }
  });

  it('returns odd annotations as allowed, with only the status annotation patched and a warning', () => {
    const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    pod.metadata!.annotations = { 'lxcfs-webhook.io/inject': 'sometimes' };
    const answer = reviewAdmission(podReview(pod), defaultSettings);
    const response = responseOf(answered(answer));
    assert.equal(response.allowed, true);
    const patch = JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as Array<{
      path: string;
    }>;
    assert.deepEqual(
      patch.map((op) => op.path),
      ['/metadata/annotations/lxcfs-webhook.io~1status'],
    );
    assert.match(
      response.warnings?.[0] ?? '',
      /annotation lxcfs-webhook.io\/inject has value "sometimes"; expected true, yes, y, on, enabled or false/,
    );
  });

  it('returns opt-outs as allowed, unpatched, without a warning', () => {
    const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    pod.metadata!.annotations = { 'lxcfs-webhook.io/inject': 'No' };
    const response = responseOf(answered(reviewAdmission(podReview(pod), defaultSettings)));
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
    assert.equal(response.patchType, undefined);
    assert.equal(response.warnings, undefined);
  });

  it('rejects with 400 and a clear message what is not an AdmissionReview', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /not an AdmissionReview/],
      [[], /not an AdmissionReview/],
      [{ kind: 'Pod' }, /not an AdmissionReview/],
      [
        { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v2' },
        /apiVersion "admission.k8s.io\/v2" is not supported; expected one of admission.k8s.io\/v1, admission.k8s.io\/v1beta1/,
      ],
      [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }, /no "request" object/],
      [
        {
          kind: 'AdmissionReview',
          apiVersion: 'admission.k8s.io/v1',
          request: { operation: 'CREATE' },
        },
        /request.uid is missing/,
      ],
      [
        { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { uid: 42 } },
        /request.uid is missing/,
      ],
    ];
    for (const [body, message] of cases) {
      const answer = reviewAdmission(body, defaultSettings);
      assert.equal(answer.kind, 'invalid');
      assert.match(problemOf(answer), message);
      assert.equal(answer.log.result, 'rejected');
    }
  });

  it('caps warnings at 10 of at most 120 characters, then "… and N more", whatever the annotations hold', () => {
    const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    const unknownNames = Array.from({ length: 40 }, (_, i) => `sidecar-${i}-${'x'.repeat(200)}`);
    pod.metadata!.annotations = { 'lxcfs-webhook.io/exclude-containers': unknownNames.join(',') };
    const warnings = responseOf(
      answered(reviewAdmission(podReview(pod), defaultSettings)),
    ).warnings!;
    assert.equal(warnings.length, WARNING_MAX_COUNT + 1);
    assert.equal(warnings.at(-1), `… and ${40 - WARNING_MAX_COUNT} more`);
    for (const warning of warnings) assert.ok(warning.length <= WARNING_MAX_CHARS, warning);
    assert.match(warnings[0]!, /names "sidecar-0-x+/);
  });

  it('keeps a 1 MiB annotation value, a control character or a huge name out of the answer and the log', () => {
    const pod = readJsonFixture<Pod>('pods', 'web-no-volumes.json');
    pod.metadata!.name = 'n'.repeat(1 << 20);
    pod.metadata!.annotations = { 'lxcfs-webhook.io/files': `meminfo\n${'y'.repeat(1 << 20)}` };
    const answer = reviewAdmission(podReview(pod, { uid: 'u'.repeat(1 << 20) }), defaultSettings);
    const [warning, ...others] = responseOf(answered(answer)).warnings!;
    // The pod's own 1 MiB annotation is over the API server's 256 KiB: no room for our status either.
    assert.deepEqual(others, [
      "lxcfs: status annotation lxcfs-webhook.io/status left out: the pod's annotations leave no room under 256 KiB",
    ]);
    assert.ok(warning!.length <= WARNING_MAX_CHARS && !/[\n\r]/.test(warning!), warning);
    assert.ok(JSON.stringify(answer.log).length < 2 * ECHO_MAX_CHARS + 300, 'log line bounded');
    assert.equal(
      responseOf(answered(answer)).uid.length,
      1 << 20,
      'the uid is echoed whole: the API server matches it',
    );

    const badVersion = reviewAdmission(
      { kind: 'AdmissionReview', apiVersion: 'v'.repeat(1 << 20) },
      defaultSettings,
    );
    assert.ok(problemOf(badVersion).length < ECHO_MAX_CHARS + 200, 'error answer bounded');
    assert.match(problemOf(badVersion), /apiVersion "v+…" is not supported/);
  });

  it('never logs the object', () => {
    const review = peerReview();
    const logged = JSON.stringify(reviewAdmission(review, defaultSettings).log);
    assert.ok(!logged.includes('"spec"'));
    assert.ok(!logged.includes('image'));
    assert.ok(logged.length < 400, logged);
  });
});
