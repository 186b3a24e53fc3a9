// The shape every subcommand module exports. `run` gets the arguments after the subcommand name and
// returns the process exit code; it throws LxcfsWebhookError for errors a user can fix.
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}
