// `npm run chart` writes the chart archive helm would: lxcfs-webhook-<version>.tgz holding every chart
// file (minus .helmignore's) under lxcfs-webhook/, and the unpacked archive renders like the source.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../helpers/paths.js';
import { chartDir, renderRaw } from './render.js';

const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) =>
    statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)],
  );
}

describe('npm run chart', () => {
  const work = mkdtempSync(join(tmpdir(), 'chart-package-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  execFileSync('npm', ['run', '-s', 'chart', '--', '--destination', work], {
    cwd: repoRoot,
    stdio: 'pipe',
  });
  const archive = join(work, `lxcfs-webhook-${version}.tgz`);

  it('names the archive after the chart and package version, Chart.yaml first, all under lxcfs-webhook/', () => {
    const listing = execFileSync('tar', ['tzf', archive], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(listing[0], 'lxcfs-webhook/Chart.yaml');
    assert.ok(
      listing.every((p) => p.startsWith('lxcfs-webhook/')),
      listing.join(', '),
    );
    const expected = walk(chartDir)
      .map((p) => `lxcfs-webhook/${relative(chartDir, p)}`)
      .filter((p) => !p.endsWith('/.helmignore'));
    assert.deepEqual(
      [...listing].sort(),
      expected.sort(),
      'every chart file except the ones .helmignore names',
    );
  });

  it('unpacks with tar into a chart that renders the same manifests as the source', () => {
    execFileSync('tar', ['xzf', archive, '-C', work]);
    assert.equal(renderRaw({ chart: join(work, 'lxcfs-webhook') }), renderRaw());
  });
});
