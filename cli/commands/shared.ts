// What every admin verb shares: the --controller and --output flags and a client
// that is closed when the verb ends.
import type { Command } from 'commander';
import { AdminClient, DEFAULT_CONTROLLER, actorName } from '../client.js';
import { resolveConnection, withConnectionFlags, type Connection } from '../connection.js';
import type { Io } from '../io.js';
import { parseOutput, resolveController, type OutputFormat } from '../options.js';

const CONTROLLER_HELP = `controller's admin gRPC address HOST:PORT (env FLEETWAVE_CONTROLLER, default ${DEFAULT_CONTROLLER})`;

/** Adds --controller to an admin verb (the program has it too, before the verb). */
export function withController(cmd: Command): Command {
  return withConnectionFlags(cmd.option('--controller <host:port>', CONTROLLER_HELP));
}

/** Adds --controller and --output to a verb that prints a listing. */
export function withListing(cmd: Command): Command {
  return withController(cmd).option('-o, --output <format>', 'table or json', 'table');
}

export function outputOf(cmd: Command): OutputFormat {
  return parseOutput(cmd.opts().output as string | undefined);
}

/** Runs `body` with a client for the controller the flags name, then closes it. */
export async function withClient<T>(cmd: Command, io: Io, body: (client: AdminClient) => Promise<T>): Promise<T> {
  // The verb's own flag, else the program's (`fleetwave --controller X verb`). Not
  // optsWithGlobals(): `agent` is also the daemon, whose --controller has a default.
  let root = cmd;
  while (root.parent) root = root.parent;
  const flag = (cmd.opts().controller ?? root.opts().controller) as string | undefined;
  const client = new AdminClient(resolveController(flag, io.env, DEFAULT_CONTROLLER), actorName(io.env), connectionOf(cmd, io));
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/** TLS and token from the verb's flags, else the program's, else the environment. */
export function connectionOf(cmd: Command, io: Io): Connection {
  let root = cmd;
  while (root.parent) root = root.parent;
  const pick = (key: string) => (cmd.opts()[key] ?? root.opts()[key]) as never;
  return resolveConnection({ ca: pick('ca'), tls: pick('tls'), token: pick('token') }, io.env);
}
