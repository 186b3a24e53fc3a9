// The shape every subcommand module exports. `parse` turns the arguments after the subcommand name into
// options without side effects (the manifests test runs it on every container's args); `run` does the
// work and returns the process exit code. Both throw LxcfsWebhookError for errors a user can fix.
export interface Command<Options = unknown> {
  name: string;
  summary: string;
  usage: string;
  parse(args: string[]): Options;
  run(options: Options): Promise<number>;
}
