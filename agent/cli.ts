// The `fleetwave agent` subcommand: flags, start-up, and a clean stop on SIGTERM/SIGINT.
import { Option, type Command } from 'commander';
import { configFileFlags, loadEffectiveConfig, type EffectiveConfig } from '../common/config-file.js';
import { FleetwaveError } from '../common/errors.js';
import { natsAuthFlags } from '../common/nats-auth.js';
import { canAuthenticate, CREDENTIAL_FILE } from './credentials.js';
import type { AgentHandle } from './main.js';
import { agentConfigSchema, compileAgentOptions, type AgentOptions, type RawAgentOptions } from './options.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerAgentCommand(program: Command): void {
  defineAgentCommand(program.command('agent'));
}

/** The agent's flags and action on `cmd`: `fleetwave agent`, or the root command of the agent artifact (agent/bin.ts). */
export function defineAgentCommand(cmd: Command): Command {
  cmd
    .description('run the agent on this host: dial the controller, supervise apps, front them with traffic gates')
    .option('--controller <host:port>', 'controller gRPC address', '127.0.0.1:7400')
    .option('--id <id>', 'agent id (default: the hostname)')
    .option('--group <name>', 'instance group', 'default')
    .option('--label <key=value>', 'label (repeatable)', collect, [])
    .option('--instance <app:[host:]port>', 'app served here and its service (gate) port, bound on host (default 0.0.0.0) (repeatable)', collect, [])
    .option('--advertise <addr>', "IP or host name routers reach this host's gates at (default: the address the controller sees it connect from)")
    .option('--data-dir <dir>', 'state and editions directory', './fleetwave-agent')
    .option('--nats <url>', 'NATS server for events', 'nats://127.0.0.1:4222')
    .option('--reset-hook <cmd>', 'local command run during HardResetServer')
    .option('--keep-editions <n>', 'editions kept on disk', '3')
    .option('--gate-queue <n>', 'requests held at most while an instance resets', '1000')
    .option('--gate-hold <duration>', 'longest a request is held before a 503 with Retry-After (below common 2 s client timeouts; apps may set their own with app create --hold)', '1.5s')
    .option('--stop-gates', 'on SIGTERM/SIGINT stop the apps and the gate host too (default: they keep serving, the next agent run adopts them)', false)
    .option('--start-first-min-free-memory <size>', 'below this much free host memory a start-first restart falls back to stop-first', '256MiB')
    .option('--boot-id <id>', 'boot id (default: /proc/sys/kernel/random/boot_id)');
  natsAuthFlags(cmd)
    .option('--insecure', 'plaintext gRPC without authentication (demo, tests)', false)
    .option('--ca <file>', "CA certificate (PEM) the controller's certificate is checked against (default: system roots)")
    .option('--join-token-file <path>', 'file holding the join token for the first connect; the credential it buys is kept in the data dir')
    .addOption(new Option('--join-token <token>', 'join token given on the command line: visible in ps, prefer --join-token-file or env FLEETWAVE_JOIN_TOKEN').env('FLEETWAVE_JOIN_TOKEN'))
    .option('--max-package-size <size>', 'largest package accepted', '2GiB')
    .option('--max-unpacked-size <size>', 'most bytes a tar.gz package may unpack to', '8GiB')
    .option('--max-package-entries <n>', 'most entries (files, directories, links) a package may hold', '100000')
    .option('--app-user <user>', 'when the agent runs as root, apps run as this unprivileged user')
    .option('--log-format <format>', 'json or pretty', 'json')
    .addOption(new Option('--log-level <level>', 'log level').default('info').env('FLEETWAVE_LOG_LEVEL'));
  configFileFlags(cmd)
    .action(async (_flags: unknown, command: Command) => {
      const { options, config } = compileOrExit(command);
      if (command.getOptionValue('printConfig')) return void process.stdout.write(config.render('agent'));
      if (!canAuthenticate(options)) fail(`no join token and no ${CREDENTIAL_FILE} in ${options.dataDir}: give --join-token-file (or FLEETWAVE_JOIN_TOKEN) with a join token (fleetwave token create NAME --role agent), or --insecure`);
      let handle: AgentHandle;
      try {
        // Loaded on demand: `fleetwave agent --help` and the admin verbs never load the agent's modules.
        const { runAgent } = await import('./main.js');
        handle = await runAgent(options);
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err), 1);
      }
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        // A second signal means the operator will not wait for the apps' stop timeouts.
        if (signals++ > 0) process.exit(1);
        const keepDataPath = !options.stopGates;
        process.stderr.write(`fleetwave agent: ${signal} received, ${keepDataPath ? 'stopping (apps and gates keep serving)' : 'stopping apps and gates'}\n`);
        handle.stop({ keepDataPath }).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
  return cmd;
}

/** Flags over environment over the --config file over defaults, checked, then compiled; exits 2 with one line if wrong. */
function compileOrExit(command: Command): { options: AgentOptions; config: EffectiveConfig } {
  let config: EffectiveConfig | undefined;
  try {
    config = loadEffectiveConfig(command, agentConfigSchema);
    // One join token: the best-placed of the file and the token wins (a flag over FLEETWAVE_JOIN_TOKEN over the config file).
    config.preferHighest(['join-token-file', 'join-token']);
    config.check();
    const raw = command.opts() as RawAgentOptions;
    const tokenSource = config.source('join-token');
    if (tokenSource === 'env' || tokenSource === 'config') raw.joinTokenSource = tokenSource;
    return { options: compileAgentOptions(raw), config };
  } catch (err) {
    const explained = config ? config.explain(err) : err;
    if (explained instanceof FleetwaveError) fail(explained.message);
    throw err;
  }
}

function fail(message: string, code = 2): never {
  process.stderr.write(`fleetwave agent: ${message}\n`);
  process.exit(code);
}
