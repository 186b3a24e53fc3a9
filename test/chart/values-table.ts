// The README's Helm values table, made from values.yaml: every value documented there with a
// `# -- description` comment becomes a row (its dotted path, default and description). A test keeps the
// README's table equal to this; `node dist/test/chart/values-table.js --write` rewrites it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isPair, isScalar, parseDocument, type Pair, type YAMLMap } from 'yaml';
import { repoRoot } from '../helpers/paths.js';

export const README = join(repoRoot, 'README.md');
export const START =
  '<!-- helm-values:start (generated from charts/lxcfs-webhook/values.yaml; a test keeps it in step) -->';
export const END = '<!-- helm-values:end -->';

export interface ValueRow {
  path: string;
  default: string;
  description: string;
}

function describe(pair: Pair): string | undefined {
  const comment = (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? '';
  const at = comment.indexOf('-- ');
  if (at < 0) return undefined;
  return comment
    .slice(at + 3)
    .split('\n')
    .map((l) => l.trim())
    .join(' ');
}

/** Rows for every documented value, and the paths of leaves left undocumented. */
export function valueRows(): { rows: ValueRow[]; undocumented: string[] } {
  const doc = parseDocument(
    readFileSync(join(repoRoot, 'charts', 'lxcfs-webhook', 'values.yaml'), 'utf8'),
  );
  const rows: ValueRow[] = [];
  const undocumented: string[] = [];
  const walk = (map: YAMLMap, prefix: string) => {
    map.items.forEach((pair, i) => {
      if (!isPair(pair) || !isScalar(pair.key)) return;
      // The first key's comment belongs to the map in yaml's tree when the map is the document.
      if (i === 0 && !pair.key.commentBefore && map.commentBefore)
        pair.key.commentBefore = map.commentBefore;
      const path = `${prefix}${String(pair.key.value)}`;
      const description = describe(pair);
      if (description !== undefined) {
        rows.push({
          path,
          default: JSON.stringify((pair.value as { toJSON(): unknown }).toJSON()),
          description,
        });
      } else if (isMap(pair.value)) {
        walk(pair.value, `${path}.`);
      } else {
        undocumented.push(path);
      }
    });
  };
  if (isMap(doc.contents)) walk(doc.contents, '');
  return { rows, undocumented };
}

export function valuesTable(): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| Value | Default | Description |',
    '| --- | --- | --- |',
    ...valueRows().rows.map(
      (r) => `| \`${r.path}\` | \`${cell(r.default)}\` | ${cell(r.description)} |`,
    ),
  ].join('\n');
}

/** The table as the README has it now. */
export function readmeTable(readme = readFileSync(README, 'utf8')): string | undefined {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) return undefined;
  return readme.slice(start + START.length, end).trim();
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  const readme = readFileSync(README, 'utf8');
  if (readmeTable(readme) === undefined)
    throw new Error(`README.md has no ${START} ... ${END} section`);
  writeFileSync(
    README,
    readme.slice(0, readme.indexOf(START) + START.length) +
      '\n' +
      valuesTable() +
      '\n' +
      readme.slice(readme.indexOf(END)),
  );
}
