// Entry point of the agent artifact (the bundle `fleetwave-agent.cjs` and the single executable `fleetwave-agent`,
// deploy/dist/bundle.ts): `fleetwave-agent [agent flags]` is `fleetwave agent [agent flags]`, and
// `fleetwave-agent __gate-host DATA_DIR` is the gate host the agent starts. CommonJS: no top-level await.
import { Command, CommanderError } from 'commander';
import { GATE_HOST_MODE } from '../common/artifact.js';
import { defineAgentCommand } from './cli.js';
import { runGateHost } from './gate-host-run.js';
import { AGENT_VERSION } from './version.js';

const args = process.argv.slice(2);
if (args[0] === GATE_HOST_MODE) runGateHost(args[1]);
// A gate host older than the hand-over's `args` starts its successor as `ARTIFACT DATA_DIR`, with an IPC channel;
// an agent never takes a positional argument.
else if (process.send && args.length === 1 && !args[0]!.startsWith('-')) runGateHost(args[0]);
else runAgentCommand(args);

function runAgentCommand(argv: string[]): void {
  const program = new Command('fleetwave-agent')
    .version(AGENT_VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  defineAgentCommand(program);
  program.parseAsync(argv, { from: 'user' }).catch((err: unknown) => {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
      process.stderr.write(`fleetwave-agent: ${err.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    process.stderr.write(`fleetwave-agent: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
