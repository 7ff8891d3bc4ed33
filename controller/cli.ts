// The `fleetwave controller` subcommand: flags in, a running controller until SIGTERM / SIGINT.
import { Option, type Command } from 'commander';
import { configFileFlags, loadEffectiveConfig, type EffectiveConfig } from '../common/config-file.js';
import { FleetwaveError } from '../common/errors.js';
import { natsAuthFlags } from '../common/nats-auth.js';
import { CONTROLLER_DEFAULTS, compileControllerOptions, controllerConfigSchema, type ControllerOptions, type RawControllerOptions } from './options.js';

const PREFIX = 'fleetwave controller:';

export function registerControllerCommand(program: Command): void {
  const cmd = program
    .command('controller')
    .description('run the controller: admin and agent gRPC, release engine, HTTP (artifacts, events, metrics)')
    .option('--listen <host:port>', 'gRPC address, agent and admin services (port 0: any free port)', CONTROLLER_DEFAULTS.listen)
    .option('--http <host:port>', 'HTTP address: web console, /api/v1, /artifacts/<sha256>, /events, /metrics, /healthz', CONTROLLER_DEFAULTS.http)
    .option('--advertise-http <url>', 'base URL agents download artifacts from (default: http://<http address>)')
    .option('--data-dir <dir>', 'holds fleetwave.db and artifacts/', CONTROLLER_DEFAULTS.dataDir)
    .option('--nats <url>', 'NATS server (JetStream stream FLEETWAVE_EVENTS is created if missing)', CONTROLLER_DEFAULTS.nats)
    .option('--heartbeat-timeout <duration>', 'an agent silent this long is unreachable', CONTROLLER_DEFAULTS.heartbeatTimeout)
    .option('--ready-file <path>', 'written with {"grpc":PORT,"http":PORT,"pid":PID} once listening')
    .option('--insecure', 'plaintext gRPC and no authentication (demo, tests)', false)
    .option('--nats-insecure', 'accept a NATS server that requires no authentication (refused otherwise unless --insecure)', false)
    .option('--tls-cert <file>', 'TLS certificate (PEM) of the gRPC listener')
    .option('--tls-key <file>', 'TLS private key (PEM) of the gRPC listener')
    .option('--tls-dir <dir>', 'a `fleetwave ca init` directory: uses its controller.crt and controller.key')
    .option('--bootstrap-token-file <path>', 'when no admin token exists yet, create one and write it here (mode 0600)')
    .option('--console-dir <dir>', 'the web console\'s built files (default: console/ beside the controller\'s code)')
    .option('--max-message-size <size>', 'largest gRPC message (bounds package uploads)', CONTROLLER_DEFAULTS.maxMessageSize)
    .option('--max-package-size <size>', 'edition install: largest package accepted at a --url', CONTROLLER_DEFAULTS.maxPackageSize)
    .option('--max-unpacked-size <size>', 'edition install: most bytes a tar.gz package may unpack to', CONTROLLER_DEFAULTS.maxUnpackedSize)
    .option('--max-package-entries <n>', 'edition install: most entries a tar.gz package may hold', CONTROLLER_DEFAULTS.maxPackageEntries)
    .option('--nats-agent-users <file>', 'nats-server users file to write: one nkey user per enrolled agent, issued at enrolment, removed on revoke')
    .option('--nats-users-template <file>', 'nats-server user entries the users file starts with (the controller\'s own user)')
    .option('--nats-reload-pid-file <file>', "nats-server's pid file: SIGHUP it after each rewrite of the users file")
    .option('--notify-retry-min <duration>', 'webhook notifications: delay after the first failed attempt, doubling per attempt', CONTROLLER_DEFAULTS.notifyRetryMin)
    .option('--notify-retry-max <duration>', 'webhook notifications: the retry delay grows no further', CONTROLLER_DEFAULTS.notifyRetryMax)
    .option('--notify-attempts <n>', 'webhook notifications: attempts in all before a delivery is dead', CONTROLLER_DEFAULTS.notifyAttempts);
  natsAuthFlags(cmd)
    .option('--log-format <format>', 'json or pretty', CONTROLLER_DEFAULTS.logFormat)
    .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent').default(CONTROLLER_DEFAULTS.logLevel).env('FLEETWAVE_LOG_LEVEL'));
  // Flag errors commander finds (unknown option, missing value) go through the program's own error
  // handling, which prints one line and exits 2; errors in the values are reported below.
  configFileFlags(cmd).action(async (_flags: unknown, command: Command) => {
    await runFromCommand(command);
  });
}

async function runFromCommand(command: Command): Promise<void> {
  const { options, config } = compileOrExit(command);
  if (command.getOptionValue('printConfig')) return void process.stdout.write(config.render('controller'));
  let controller;
  try {
    // Loaded on demand: only `fleetwave controller` loads the store (better-sqlite3) and the engine.
    const { runController } = await import('./main.js');
    controller = await runController(options);
  } catch (err) {
    fail(err, 1);
  }
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    controller
      .stop()
      .then(() => process.exit(0))
      .catch((err) => {
        process.stderr.write(`${PREFIX} stop after ${signal} failed: ${(err as Error).message}\n`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Flags over environment over the --config file over defaults, checked, then compiled; exits 2 with one line if wrong. */
function compileOrExit(command: Command): { options: ControllerOptions; config: EffectiveConfig } {
  let config: EffectiveConfig | undefined;
  try {
    config = loadEffectiveConfig(command, controllerConfigSchema);
    config.check();
    return { options: compileControllerOptions(command.opts() as RawControllerOptions), config };
  } catch (err) {
    fail(config ? config.explain(err) : err);
  }
}

function fail(err: unknown, code = 2): never {
  const message = err instanceof FleetwaveError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`${PREFIX} ${message.split('\n')[0]}\n`);
  process.exit(code);
}
