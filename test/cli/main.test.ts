// The top level of the CLI: the version, which a bug report needs first.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/paths.js';
import { runCli } from '../helpers/run-cli.js';

describe('lxcfs-webhook --version and version', () => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  for (const args of [['--version'], ['version']]) {
    it(`${args[0]} prints the package's version and the Node.js version, exit 0`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `lxcfs-webhook ${version} (Node.js ${process.version})\n`);
    });
  }
  it('is listed in the usage and among the commands an unknown one is told about', async () => {
    assert.match((await runCli(['--help'])).stdout, /^ {2}version +print the version/m);
    assert.match((await runCli(['versoin'])).stderr, /expected one of .*, version$/m);
  });
});
