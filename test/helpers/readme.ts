// The README's examples, for the tests that run them: fenced blocks found by the comment on their first
// line (`# network-policy.yaml`) or by an HTML comment just before them (`<!-- example: NAME -->`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const readme = (): string => readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** Every fenced block of the README, with the text just before it. */
function blocks(text = readme()): Array<{ before: string; body: string }> {
  const out: Array<{ before: string; body: string }> = [];
  const fence = /```[a-z]*\n([\s\S]*?)```/g;
  for (let match = fence.exec(text); match; match = fence.exec(text)) {
    out.push({ before: text.slice(Math.max(0, match.index - 200), match.index), body: match[1]! });
  }
  return out;
}

/** The block whose first line is `# <name>` (its file name), e.g. `network-policy.yaml`. */
export function readmeFile(name: string): string {
  const found = blocks().filter((b) => b.body.split('\n', 1)[0]!.trim() === `# ${name}`);
  if (found.length !== 1)
    throw new Error(`README.md has ${found.length} blocks starting with "# ${name}", expected 1`);
  return found[0]!.body;
}

/** The block right after `<!-- example: <name> -->`. */
export function readmeExample(name: string): string {
  const found = blocks().filter((b) => b.before.trimEnd().endsWith(`<!-- example: ${name} -->`));
  if (found.length !== 1)
    throw new Error(
      `README.md has ${found.length} blocks after "<!-- example: ${name} -->", expected 1`,
    );
  return found[0]!.body;
}

/** Every command line of the README's sh blocks that starts with `program `. */
export function readmeCommands(program: string): string[] {
  return blocks()
    .flatMap((b) => b.body.split('\n'))
    .filter((line) => line.startsWith(`${program} `));
}
