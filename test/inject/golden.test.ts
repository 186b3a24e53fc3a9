// Golden files: the exact patch and warnings mutatePod produces for each pod in test/fixtures/pods, so a
// change in output shows up in review as a diff. Regenerate with UPDATE_GOLDEN=1 and read the diff.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { mutatePod } from '../../src/inject/mutate.js';
import type { Pod } from '../../src/inject/pod.js';
import { defaultSettings } from '../../src/inject/settings.js';
import { fixturePath, readJsonFixture } from '../helpers/paths.js';

const pods = readdirSync(fixturePath('pods'))
  .filter((name) => name.endsWith('.json'))
  .sort();

describe('golden patches', () => {
  it('has pods to check', () => assert.ok(pods.length >= 3));
  for (const name of pods) {
    it(name, () => {
      const { patch, warnings } = mutatePod({
        pod: readJsonFixture<Pod>('pods', name),
        settings: defaultSettings,
      });
      const actual = `${JSON.stringify({ patch, warnings }, null, 2)}\n`;
      const golden = fixturePath('golden', name.replace(/\.json$/, '.patch.json'));
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, actual);
      assert.equal(actual, readFileSync(golden, 'utf8'));
    });
  }
});
