// Entry point of the agent artifact (the bundle `fleetwave-agent.cjs` and the single executable `fleetwave-agent`,
// deploy/dist/bundle.ts): `fleetwave-agent [agent flags]` is `fleetwave agent [agent flags]`, and
// `fleetwave-agent __gate-host DATA_DIR` is the gate host the agent starts. CommonJS: no top-level await.
// Each mode loads only its own modules (the bundler defers what is imported dynamically): the gate host starts with
// every agent start, and `--version` is how an upgrade checks an artifact.
import { GATE_HOST_MODE } from '../common/artifact.js';
import { AGENT_VERSION } from './version.js';

const args = process.argv.slice(2);
if (args[0] === GATE_HOST_MODE) void gateHost(args[1]);
// A gate host older than the hand-over's `args` starts its successor as `ARTIFACT DATA_DIR`, with an IPC channel;
// an agent never takes a positional argument.
else if (process.send && args.length === 1 && !args[0]!.startsWith('-')) void gateHost(args[0]);
else if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${AGENT_VERSION}\n`);
else void agent(args);

async function gateHost(dataDir: string | undefined): Promise<void> {
  const { runGateHost } = await import('./gate-host-run.js');
  runGateHost(dataDir);
}

async function agent(argv: string[]): Promise<void> {
  const [{ Command, CommanderError }, { defineAgentCommand }] = await Promise.all([import('commander'), import('./cli.js')]);
  const program = new Command('fleetwave-agent')
    .version(AGENT_VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  defineAgentCommand(program);
  await program.parseAsync(argv, { from: 'user' }).catch((err: unknown) => {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
      process.stderr.write(`fleetwave-agent: ${err.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    process.stderr.write(`fleetwave-agent: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
