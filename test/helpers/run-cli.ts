// Runs the compiled CLI (dist/src/cli/main.js) as a child process, the way users run it.
import { spawnSync } from 'node:child_process';
import { cliPath } from './paths.js';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { stdin?: string } = {}): CliResult {
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    input: options.stdin ?? '',
    encoding: 'utf8',
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
