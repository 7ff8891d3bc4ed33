// The `fleetwave` command line: the program, its admin verbs, and how any error
// becomes one line on stderr and an exit code (never a stack trace).
//
// Exit codes, one rule for every verb (README "Exit codes"):
//   0 ok;
//   1 refused: the request was valid but the state refuses it (a second active release, an action the
//     release's status does not allow, a duplicate name), or a watched release did not end where the
//     watched action aimed;
//   2 bad input: a malformed flag or spec, or a name that does not exist (app, edition, group, release);
//   3 the controller cannot be reached (or did not answer in time).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BadInputError, FleetwaveError, NotFoundError, UnavailableError } from '../common/errors.js';
import { DEFAULT_CONTROLLER } from './client.js';
import { registerAppCommands } from './commands/app.js';
import { registerFleetCommands } from './commands/fleet.js';
import { registerAgentUpgradeCommands } from './commands/agent-upgrade.js';
import { registerReleaseCommands } from './commands/release.js';
import { registerRouteCommands } from './commands/route.js';
import { registerCaCommands } from './commands/ca.js';
import { registerTokenCommands } from './commands/token.js';
import { registerNotifyCommands } from './commands/notify.js';
import { registerSchemaCommand } from './commands/schema.js';
import { registerCompletionCommands } from './commands/completion.js';
import type { Io } from './io.js';

export const EXIT_OK = 0;
/** Refused by the state, or a watched release ended elsewhere than aimed. */
export const EXIT_FAILED = 1;
/** Bad input, including names that do not exist. */
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

/** Registers more commands on the program (the daemons: controller, agent). */
export type Registration = (program: Command) => void;

export function createProgram(io: Io, daemons: Registration[] = []): Command {
  const program = new Command('fleetwave')
    .description('Phased, interruption-free releases of application editions to fleets of VM hosts')
    .version(readVersion(), '-V, --version')
    .option('--controller <host:port>', `controller's admin gRPC address (env FLEETWAVE_CONTROLLER, default ${DEFAULT_CONTROLLER})`)
    .option('--ca <file>', 'CA certificate (PEM) of the controller (env FLEETWAVE_CA); turns TLS on')
    .option('--tls', 'TLS with the system roots (env FLEETWAVE_TLS=1)')
    .option('--token <token>', 'bearer token (env FLEETWAVE_TOKEN)')
    // Program options only before the verb: `fleetwave agent --controller X` is the agent's flag.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text.replace(/\n$/, '')),
      writeErr: (text) => io.err(text.replace(/\n$/, '')),
      // Usage errors are printed by runProgram, as one line.
      outputError: () => {},
    });
  // Set before any subcommand exists: commander copies these settings to subcommands.
  for (const register of daemons) register(program);
  registerAppCommands(program, io);
  registerReleaseCommands(program, io);
  registerRouteCommands(program, io);
  registerFleetCommands(program, io);
  registerAgentUpgradeCommands(program, io);
  registerCaCommands(program, io);
  registerTokenCommands(program, io);
  registerNotifyCommands(program, io);
  registerSchemaCommand(program, io);
  // Last: the completion model is read from the commands registered so far.
  registerCompletionCommands(program, io);
  return program;
}

/** Parses `args` (without node and the script) and runs the verb; resolves to the exit code. */
export async function runProgram(args: string[], io: Io, daemons: Registration[] = []): Promise<number> {
  try {
    const program = createProgram(io, daemons);
    await program.parseAsync(args, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    return reportError(err, io);
  }
}

/** The one place an error becomes a line on stderr and an exit code. */
export function reportError(err: unknown, io: Io): number {
  if (err instanceof CommanderError) {
    // Help and version were asked for; `commander.help` is help shown for a missing verb.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
    if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return EXIT_USAGE;
    io.err(`fleetwave: ${err.message.replace(/^error: /, '')}`);
    return EXIT_USAGE;
  }
  if (err instanceof FleetwaveError) {
    io.err(`fleetwave: ${err.message}`);
    if (io.env.FLEETWAVE_DEBUG && err.cause) io.err(String((err.cause as Error).stack ?? err.cause));
    if (err instanceof BadInputError || err instanceof NotFoundError) return EXIT_USAGE;
    if (err instanceof UnavailableError) return EXIT_UNREACHABLE;
    return EXIT_FAILED;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.err(`fleetwave: unexpected error: ${message}${io.env.FLEETWAVE_DEBUG ? '' : ' (FLEETWAVE_DEBUG=1 shows more)'}`);
  if (io.env.FLEETWAVE_DEBUG && err instanceof Error) io.err(err.stack ?? '');
  return EXIT_FAILED;
}

/** Set by the bundler (deploy/dist/bundle.ts): a bundle has no package.json above it. */
declare const FLEETWAVE_VERSION: string | undefined;

function readVersion(): string {
  if (typeof FLEETWAVE_VERSION === 'string') return FLEETWAVE_VERSION;
  // dist/cli/main.js and cli/program.ts sit at different depths below package.json.
  for (const up of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fleetwave' && pkg.version) return pkg.version;
    } catch {
      // try the next
    }
  }
  return '0.0.0';
}
