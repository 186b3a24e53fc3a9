// Renders charts/lxcfs-webhook with test/chart/renderer (Go text/template + sprig + Helm's own
// functions, from Debian's Go packages; see main.go), built once per source hash and cached under
// node_modules/.cache so that a second run does not compile again.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from '../helpers/paths.js';
import type { K8sObject } from '../deploy/render.js';

export const chartDir = join(repoRoot, 'charts', 'lxcfs-webhook');
const source = join(repoRoot, 'test', 'chart', 'renderer', 'main.go');
/** Debian's golang-*-dev packages put their sources here (GOPATH layout). */
const DEBIAN_GOPATH = '/usr/share/gocode';
/** A cold build takes a few seconds; this bounds it on a loaded machine. */
const BUILD_TIMEOUT_MS = 300_000;

let built: string | undefined;

/** Path of the renderer binary, compiling it when no build of this source and Go version is cached. */
export function rendererPath(): string {
  if (built) return built;
  const goVersion = execFileSync('go', ['version'], { encoding: 'utf8' });
  // Rebuilt when the source, Go, or a Debian Go package it is built from changes (their directories' mtimes).
  const packages = [
    'Masterminds/sprig',
    'Masterminds/semver',
    'ghodss/yaml',
    'xeipuuv/gojsonschema',
  ].map((p) => {
    const dir = join(DEBIAN_GOPATH, 'src', 'github.com', p);
    if (!existsSync(dir))
      throw new Error(
        `${dir} is missing: run scripts/setup-system.sh (as root) for Go and Debian's Go packages`,
      );
    return `${p}@${statSync(dir).mtimeMs}`;
  });
  const hash = createHash('sha256')
    .update(readFileSync(source))
    .update(goVersion)
    .update(packages.join())
    .digest('hex')
    .slice(0, 16);
  const cache = join(repoRoot, 'node_modules', '.cache', 'lxcfs-chart-renderer');
  const binary = join(cache, `renderer-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(cache, { recursive: true });
    const work = mkdtempSync(join(tmpdir(), 'chart-renderer-'));
    try {
      // GOPATH mode, offline: only Debian's packaged sources are importable, nothing is downloaded.
      const env = {
        ...process.env,
        GO111MODULE: 'off',
        GOFLAGS: '',
        GOPROXY: 'off',
        GOPATH: `${work}:${DEBIAN_GOPATH}`,
        GOCACHE: join(cache, 'gocache'),
      };
      const result = spawnSync(
        'nice',
        ['-n', '10', 'go', 'build', '-o', join(work, 'renderer'), source],
        { env, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS },
      );
      if (result.status !== 0)
        throw new Error(
          `building the chart renderer failed (run scripts/setup-system.sh for Go and the Debian Go packages): ${result.error?.message ?? ''}${result.stderr}`,
        );
      renameSync(join(work, 'renderer'), binary); // atomic: a concurrent run never sees half a binary
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  built = binary;
  return binary;
}

export interface RenderOptions {
  /** Chart directory; charts/lxcfs-webhook when not given. */
  chart?: string;
  /** Values files, as `helm template -f a -f b` (later wins). */
  values?: object[];
  namespace?: string;
  releaseName?: string;
  /** Render as `helm upgrade` against these objects already in the cluster (what `lookup` finds). */
  upgradeFrom?: object[];
  /** What `lookup` finds, without implying an upgrade (`helm install` against a live cluster); upgradeFrom wins. */
  lookup?: object[];
  /** Render as `helm upgrade` (.Release.IsUpgrade) with `lookup` or `upgradeFrom` as the cluster. */
  isUpgrade?: boolean;
  /** Defaults in place of the chart's values.yaml (`helm upgrade --reuse-values` renders with the last release's values). */
  chartValues?: object;
  notes?: boolean;
  /** The cluster's version, as `helm template --kube-version`. */
  kubeVersion?: string;
}

export class RenderError extends Error {}

/** Runs the renderer; returns its raw output or throws RenderError with Helm's error text. */
export function renderRaw(opts: RenderOptions = {}): string {
  const work = mkdtempSync(join(tmpdir(), 'chart-values-'));
  try {
    const args = [
      '--chart',
      opts.chart ?? chartDir,
      '--namespace',
      opts.namespace ?? 'lxcfs',
      '--name',
      opts.releaseName ?? 'lxcfs-webhook',
    ];
    (opts.values ?? []).forEach((v, i) => {
      const file = join(work, `values-${i}.yaml`);
      writeFileSync(file, stringify(v));
      args.push('-f', file);
    });
    const cluster = opts.upgradeFrom ?? opts.lookup;
    if (cluster) {
      const file = join(work, 'cluster.yaml');
      writeFileSync(file, cluster.map((o) => stringify(o)).join('---\n'));
      args.push('--lookup', file);
    }
    if (opts.upgradeFrom || opts.isUpgrade) args.push('--upgrade');
    if (opts.chartValues) {
      const file = join(work, 'chart-values.yaml');
      writeFileSync(file, stringify(opts.chartValues));
      args.push('--chart-values', file);
    }
    if (opts.notes) args.push('--notes');
    if (opts.kubeVersion) args.push('--kube-version', opts.kubeVersion);
    const result = spawnSync(rendererPath(), args, { encoding: 'utf8' });
    if (result.status !== 0) throw new RenderError(result.stderr.trim());
    return result.stdout;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface Rendered {
  source: string;
  object: K8sObject;
}

/** Renders and parses the manifests, keeping each one's `# Source:` template. */
export function renderChart(opts: RenderOptions = {}): Rendered[] {
  return parseAllDocuments(renderRaw(opts)).map((doc) => {
    const source =
      /^# Source: (.*)$/m.exec(String(doc.commentBefore ?? ''))?.[1] ??
      /# Source: (.*)/.exec(doc.toString())?.[1];
    return { source: source ?? '', object: doc.toJS() as K8sObject };
  });
}

/** Objects Helm installs with the release (test hooks run only on `helm test`). */
export function releaseObjects(rendered: Rendered[]): K8sObject[] {
  return rendered
    .map((r) => r.object)
    .filter((o) => o.metadata.annotations?.['helm.sh/hook'] === undefined);
}
