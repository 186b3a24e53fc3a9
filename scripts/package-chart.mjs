// `npm run chart`: packages charts/lxcfs-webhook as lxcfs-webhook-<version>.tgz, laid out as
// `helm package` lays it out (every file under a top directory named after the chart, files that
// .helmignore names left out), with no helm binary. The chart's version must be package.json's.
//   node scripts/package-chart.mjs [--destination DIR]
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse } from 'yaml';

const root = new URL('..', import.meta.url).pathname;
const chartDir = join(root, 'charts', 'lxcfs-webhook');
const destIndex = process.argv.indexOf('--destination');
const destination = resolve(destIndex > 0 ? process.argv[destIndex + 1] : '.');

const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
if (chart.version !== version || chart.appVersion !== version) {
  console.error(
    `chart: Chart.yaml version ${chart.version} / appVersion ${chart.appVersion} must both be package.json's ${version}`,
  );
  process.exit(1);
}

/** .helmignore lines as tests on a path relative to the chart: `dir/` for directories, globs with * and ?. */
function ignoreRules() {
  let text = '';
  try {
    text = readFileSync(join(chartDir, '.helmignore'), 'utf8');
  } catch {
    /* none */
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((pattern) => {
      const dirOnly = pattern.endsWith('/');
      const glob = pattern.replace(/\/$/, '');
      const re = new RegExp(
        `^${glob
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')}$`,
      );
      // A pattern without a slash matches a name at any depth, as in .helmignore.
      return (rel, isDir) =>
        (!dirOnly || isDir) && (glob.includes('/') ? re.test(rel) : re.test(rel.split('/').pop()));
    });
}
const rules = ignoreRules();
const ignored = (rel, isDir) => rules.some((r) => r(rel, isDir));

function files(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      const rel = relative(chartDir, path);
      const isDir = statSync(path).isDirectory();
      if (ignored(rel, isDir)) return [];
      return isDir ? files(path) : [rel];
    });
}

/** One ustar header block; names over 100 bytes go in the prefix field. */
function header(name, size) {
  const block = Buffer.alloc(512);
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/');
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155)
      throw new Error(`path too long for ustar: ${prefix}/${name}`);
  }
  const put = (value, offset, length) => block.write(value, offset, length, 'utf8');
  const octal = (n, length) => n.toString(8).padStart(length - 1, '0') + '\0';
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(0, 12), 136, 12); // mtime 0: the same chart gives the same bytes
  put('        ', 148, 8); // checksum counted as spaces
  put('0', 156, 1);
  put('ustar\u000000', 257, 8);
  put(prefix, 345, 155);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return block;
}

// helm package (chartutil.Save) writes Chart.yaml, values.yaml and values.schema.json first.
const first = ['Chart.yaml', 'values.yaml', 'values.schema.json'];
const rank = (rel) => (first.includes(rel) ? first.indexOf(rel) : first.length);
const blocks = [];
for (const rel of files(chartDir).sort((a, b) => rank(a) - rank(b))) {
  const data = readFileSync(join(chartDir, rel));
  blocks.push(
    header(`${chart.name}/${rel.split('\\').join('/')}`, data.length),
    data,
    Buffer.alloc((512 - (data.length % 512)) % 512),
  );
}
blocks.push(Buffer.alloc(1024)); // end of archive
mkdirSync(destination, { recursive: true });
const out = join(destination, `${chart.name}-${chart.version}.tgz`);
writeFileSync(out, gzipSync(Buffer.concat(blocks)));
console.log(`Successfully packaged chart and saved it to: ${out}`);
