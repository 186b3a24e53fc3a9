// Reading what a command is given with -f: a file, or stdin for "-". One set of messages for every
// command, each naming the path and what to do.
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { configError, LxcfsWebhookError } from '../errors.js';

export const STDIN = '-';

const READ_PROBLEMS: Record<string, string> = {
  ENOENT: 'file not found; check the path',
  EISDIR: 'is a directory; pass each file with its own -f',
  EACCES: 'permission denied',
};

/**
 * The text of `path` (stdin for "-"). `stdinHint` is what to pipe in when stdin is a terminal: a
 * command that reads stdin by default must not sit waiting for a person to type JSON.
 */
export async function readInput(path: string, stdinHint?: string): Promise<string> {
  if (path === STDIN) {
    if (stdinHint !== undefined && process.stdin.isTTY)
      throw configError(
        `nothing to read on stdin (a terminal); pipe \`${stdinHint}\` into it, or give -f FILE`,
      );
    return text(process.stdin);
  }
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = String((err as NodeJS.ErrnoException).code);
    throw new LxcfsWebhookError(
      'E_MANIFEST',
      `-f ${path}: ${READ_PROBLEMS[code] ?? `cannot be read (${code})`}`,
      { cause: err },
    );
  }
}
