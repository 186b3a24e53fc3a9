// Runs the compiled CLI (dist/src/cli/main.js) as a child process, the way users run it. The one way
// tests run a command: a command that does not finish in time is a failure, never an exit code.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cliPath } from './paths.js';

export interface CliResult {
  /** Exit code; null when a signal ended the command. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string;
  /** The command is killed and the test fails after this long. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs `lxcfs-webhook <args>`. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return runCommand(process.execPath, [cliPath, ...args], options);
}

/** Runs any program the same way: fails the test when it does not finish within the timeout. */
export function runCommand(
  file: string,
  args: readonly string[],
  { stdin = '', timeoutMs = 30_000, env }: RunOptions = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = execFile(
      file,
      args,
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: env ?? process.env,
      },
      (err, stdout, stderr) => {
        const signal = child.signalCode;
        // execFile kills at the timeout with killSignal; anything else that killed it is the command's own end.
        if (signal === 'SIGKILL' && Date.now() - started >= timeoutMs) {
          reject(
            new assert.AssertionError({
              message: `${[file, ...args].join(' ')} did not finish within ${timeoutMs} ms; stdout: ${stdout.slice(-2000)} stderr: ${stderr.slice(-2000)}`,
            }),
          );
          return;
        }
        if (err && typeof err.code === 'string') {
          reject(err); // could not be started at all (ENOENT, EACCES)
          return;
        }
        resolve({ code: child.exitCode, signal, stdout, stderr });
      },
    );
    child.stdin?.end(stdin);
  });
}
