// The source's layering, checked on its import statements: no import cycles (type-only imports
// included: a cycle of types is still two modules that cannot be read apart), and no module importing
// from a layer above its own. The layers are the README's "Development" map.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers/paths.js';

const SRC = join(repoRoot, 'src');

/** Lower numbers are lower layers; a module may import from its own layer and those below. */
const LAYERS: Array<[prefix: string, layer: number]> = [
  ['config/', 0],
  ['errors.ts', 0],
  ['bounded.ts', 1],
  ['log.ts', 0],
  ['plumbing/', 1],
  ['kube/', 1],
  ['inject/', 2],
  ['certs/', 2],
  ['manifest/', 3],
  ['admission/', 3],
  ['agent/host/', 3],
  ['agent/lxcfs/', 4],
  ['agent/repair/', 5],
  ['agent/', 6],
  ['audit/', 4],
  ['policy/', 3],
  ['cli/', 9],
];

function layerOf(file: string): number {
  const match = LAYERS.filter(([prefix]) => file.startsWith(prefix)).sort(
    (a, b) => b[0].length - a[0].length,
  )[0];
  assert.ok(match, `${file} belongs to no layer: add its folder to LAYERS (and to the README map)`);
  return match[1];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory()
      ? sourceFiles(path)
      : name.endsWith('.ts')
        ? [relative(SRC, path)]
        : [];
  });
}

/** Relative imports of a file, as paths under src/ (`.js` in the source is the `.ts` file). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from '(\.[^']+)'/gm)].map((m) =>
    relative(SRC, resolve(dirname(join(SRC, file)), m[1]!)).replace(/\.js$/, '.ts'),
  );
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every relative import names a source file', () => {
  for (const [file, imports] of graph)
    for (const target of imports)
      assert.ok(graph.has(target), `${file} imports ${target}, which does not exist`);
});

test('nothing imports from a higher layer', () => {
  const upward = [...graph].flatMap(([file, imports]) =>
    imports
      .filter((target) => layerOf(target) > layerOf(file))
      .map((target) => `${file} (layer ${layerOf(file)}) → ${target} (layer ${layerOf(target)})`),
  );
  assert.deepEqual(upward, []);
});

test('there are no import cycles', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      return;
    }
    state.set(file, 'visiting');
    for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
});
