#!/usr/bin/env node
// `lxcfs-webhook <command> [flags]`: dispatches to one module per subcommand. Modules are loaded on
// demand so `serve` does not pay for the agent's code and the other way round.
import { readFileSync } from 'node:fs';
import { LxcfsWebhookError } from '../errors.js';
import type { Command } from './command.js';

// `any`: each command has its own options type, and only the command itself passes them along.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const commands: Record<string, () => Promise<{ command: Command<any> }>> = {
  serve: () => import('./serve.js'),
  inject: () => import('./inject.js'),
  'docker-args': () => import('./docker-args.js'),
  agent: () => import('./agent.js'),
  check: () => import('./check.js'),
  certs: () => import('./certs.js'),
  audit: () => import('./audit.js'),
  policy: () => import('./policy.js'),
};

/**
 * `lxcfs-webhook 0.1.0 (Node.js v20.11.1)`: the package's version, read from the package.json three
 * directories above dist/src/cli (npm always installs it), and the Node.js that runs it, the two
 * things a bug report needs.
 */
function versionLine(): string {
  const { version } = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return `lxcfs-webhook ${version} (Node.js ${process.version})`;
}

async function usage(): Promise<string> {
  const lines = ['usage: lxcfs-webhook <command> [flags]', '', 'commands:'];
  for (const load of Object.values(commands)) {
    const { command } = await load();
    lines.push(`  ${command.name.padEnd(12)} ${command.summary}`);
  }
  lines.push(
    `  ${'version'.padEnd(12)} print the version of lxcfs-webhook and of Node.js (also --version)`,
  );
  lines.push('', "Run 'lxcfs-webhook <command> --help' for the flags of one command.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name === undefined ? 2 : 0;
  }
  if (name === 'version' || name === '--version') {
    console.log(versionLine());
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(
      `lxcfs-webhook: unknown command "${name}"; expected one of ${[...Object.keys(commands), 'version'].join(', ')}`,
    );
    return 2;
  }
  const { command } = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(command.parse(rest));
  } catch (err) {
    if (err instanceof LxcfsWebhookError) {
      console.error(`lxcfs-webhook ${name}: ${err.message} [${err.code}]`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
