// The `fleetwave router` subcommand: flags, start-up, and a clean stop on SIGTERM/SIGINT (haproxy keeps serving).
import { Option, type Command } from 'commander';
import { configFileFlags, loadEffectiveConfig, type EffectiveConfig } from '../common/config-file.js';
import { BadInputError, FleetwaveError } from '../common/errors.js';
import { natsAuthFlags } from '../common/nats-auth.js';
import { ROUTER_DEFAULTS, compileRouterOptions, routerConfigSchema, type RawRouterOptions, type RouterOptions } from './options.js';

const PREFIX = 'fleetwave router:';
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerRouterCommand(program: Command): void {
  const cmd = program
    .command('router')
    .description('run an edition router: program a haproxy through its admin socket from the controller and instance events')
    .option('--app <name=[host]:port>', 'app to front and where its frontend listens (repeatable; no host: every IPv4 interface)', collect, [])
    .option('--haproxy-socket <path>', "haproxy's admin socket (stats socket … level admin); default with --haproxy-bin: <run-dir>/haproxy.sock")
    .option('--haproxy-bin <path>', 'start this haproxy (detached, generated config in the run dir) unless the socket already answers')
    .option('--haproxy-threads <n>', "nbthread of a haproxy the router starts (0: haproxy's default, one per CPU)", '0')
    .option('--run-dir <dir>', 'generated haproxy config, maps, Lua script and pid file', ROUTER_DEFAULTS.runDir)
    .option('--controller <host:port>', 'controller gRPC address', ROUTER_DEFAULTS.controller)
    .addOption(new Option('--token <token>', 'bearer token with the router role').env('FLEETWAVE_TOKEN'))
    .option('--token-file <path>', 'file holding the router token (mode 0600; kept out of ps and of the config file)')
    .option('--ca <file>', "CA certificate (PEM) the controller's certificate is checked against (default: system roots)")
    .option('--insecure', 'plaintext gRPC (demo, tests); a --token is still sent when given', false)
    .option('--nats <url>', "NATS server for instance events ('' for none: the watch alone steers)", ROUTER_DEFAULTS.nats);
  natsAuthFlags(cmd)
    .option('--edition-slots <n>', 'editions each app can route to at once (one haproxy backend each)', String(ROUTER_DEFAULTS.editionSlots))
    .option('--id <name>', 'router id in acks and logs (default: the hostname)')
    .option('--print-haproxy-config', 'print the haproxy configuration for these apps and exit (for a host whose haproxy config an operator keeps)', false)
    .option('--log-format <format>', 'json or pretty', ROUTER_DEFAULTS.logFormat)
    .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent').default(ROUTER_DEFAULTS.logLevel).env('FLEETWAVE_LOG_LEVEL'));
  configFileFlags(cmd)
    .action(async (_flags: unknown, command: Command) => {
      const { options, config } = compileOrExit(command);
      if (command.getOptionValue('printConfig')) return void process.stdout.write(config.render('router'));
      if (options.printHaproxyConfig) return printHaproxyConfig(options);
      // Loaded here, not at the top: the admin verbs and the other daemons never load the router.
      const { runRouter } = await import('./main.js');
      let handle;
      try {
        handle = await runRouter(options);
      } catch (err) {
        fail(err, err instanceof BadInputError ? 2 : 1);
      }
      let signalled = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) process.exit(1);
        signalled = true;
        process.stderr.write(`${PREFIX} ${signal} received, stopping (haproxy keeps serving)\n`);
        handle.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
}

async function printHaproxyConfig(options: RouterOptions): Promise<void> {
  const { runDirConfig } = await import('./haproxy-process.js');
  const config = runDirConfig(
    { apps: options.apps, slots: options.editionSlots, runDir: options.runDir, socketPath: options.haproxySocket, haproxyBin: options.haproxyBin, threads: options.haproxyThreads },
    false,
  );
  process.stdout.write(config);
}

/** Flags over environment over the --config file over defaults, checked, then compiled; exits 2 with one line if wrong. */
function compileOrExit(command: Command): { options: RouterOptions; config: EffectiveConfig } {
  let config: EffectiveConfig | undefined;
  try {
    config = loadEffectiveConfig(command, routerConfigSchema);
    // One token: the best-placed of the file and the token wins (a flag over FLEETWAVE_TOKEN over the config file).
    config.preferHighest(['token-file', 'token']);
    config.check();
    return { options: compileRouterOptions(command.opts() as RawRouterOptions), config };
  } catch (err) {
    fail(config ? config.explain(err) : err);
  }
}

function fail(err: unknown, code = 2): never {
  const message = err instanceof FleetwaveError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`${PREFIX} ${message.split('\n')[0]}\n`);
  process.exit(code);
}
