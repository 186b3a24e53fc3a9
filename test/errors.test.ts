// The README's error table is ERROR_CODES, both ways: every code the code knows is documented with the
// same words, and the README names no code the code does not have.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../src/errors.js';
import { repoRoot } from './helpers/paths.js';

function readmeErrorTable(): Record<string, string> {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('| code | meaning |');
  assert.ok(start >= 0, 'README has no "| code | meaning |" table');
  const rows = readme.slice(start).split('\n\n')[0]!.split('\n').slice(2);
  return Object.fromEntries(
    rows.map((row) => {
      const match = /^\| `(E_[A-Z_]+)` \| (.+) \|$/.exec(row);
      assert.ok(match, `README error table row not in the form | \`E_CODE\` | meaning |: ${row}`);
      return [match[1]!, match[2]!];
    }),
  );
}

test("the README's error table says what ERROR_CODES says, code for code and word for word", () => {
  assert.deepEqual(readmeErrorTable(), { ...ERROR_CODES });
});
