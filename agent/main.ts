// Wires the agent together: state, event publisher, instances (gate + supervisor), command dispatcher, controller session.
import { hostname } from 'node:os';
import { createLogger, type Logger } from '../common/logger.js';
import type { Hello } from '../proto/gen/fleetwave/v1/agent.js';
import { CommandDispatcher } from './commands/dispatcher.js';
import { loadEventSigner, type EventSigner } from './event-key.js';
import { EventPublisher } from './events.js';
import { GateLink } from './gate-link.js';
import type { HoldFigures } from './hold-stats.js';
import { Instance } from './instance.js';
import type { AgentOptions } from './options.js';
import { artifactAccess, controllerLink, issuedNatsAuth } from './credentials.js';
import { ControllerSession } from './session.js';
import { AgentState } from './state.js';
import { AGENT_VERSION } from './version.js';
import type { KeeperLink } from './commands/types.js';
import { readFailure } from './upgrade/versions.js';

export interface AgentHandle {
  /**
   * Closes the stream and NATS. By default also stops app processes (SIGTERM, SIGKILL after their stop timeout) and the
   * gate host; `keepDataPath` leaves both running for the next agent run to adopt (what `fleetwave agent` does on
   * SIGTERM unless --stop-gates). Idempotent.
   */
  stop(options?: { keepDataPath?: boolean }): Promise<void>;
  /** Held-time figures of each app's gate. */
  gateStats(): Promise<Record<string, HoldFigures | undefined>>;
  /** The port each app's gate listens on (useful when --instance gave port 0). */
  servicePorts(): Record<string, number>;
}

/** What runs the agent besides its options. */
export interface AgentRuntime {
  /** The keeper this agent runs under (--self-upgrade): it may then stage upgrades (docs/agent-upgrade.md). */
  keeper?: KeeperLink;
}

export async function runAgent(
  options: AgentOptions,
  logger: Logger = createLogger({ name: 'agent', format: options.logFormat, level: options.logLevel }),
  runtime: AgentRuntime = {},
): Promise<AgentHandle> {
  const log = logger.child({ agent: options.id });
  const state = await AgentState.open(options.dataDir);
  const { skipped, migrated } = state.journal.load;
  if (skipped > 0 || migrated > 0) log.info({ skipped, migrated }, 'command journal loaded: damaged lines skipped, commands.json entries migrated');
  const signer = loadEventSigner(options.dataDir);
  // Without a NATS credential flag, the key the controller issued at enrolment (--nats-agent-users), if any.
  const natsGiven = Object.keys(options.natsAuth).length > 0 || options.insecure;
  const natsAuth = natsGiven ? options.natsAuth : () => issuedNatsAuth(options.dataDir) ?? {};
  const events = new EventPublisher(options.nats, options.id, log, natsAuth, signer);

  const instances = new Map<string, Instance>();
  // The gates run in the gate host, which outlives this process: adopted when one from an earlier run answers.
  let gates: GateLink;
  try {
    gates = await GateLink.open(options.dataDir, log);
  } catch (err) {
    await events.close();
    throw err;
  }
  try {
    await gates.request({ op: 'retain', apps: options.instances.map((i) => i.app) });
    for (const option of options.instances) instances.set(option.app, await Instance.open(option, options, state, events, log, gates));
  } catch (err) {
    await Promise.all([...instances.values()].map((i) => i.close()));
    gates.close();
    await events.close();
    throw err;
  }
  let stopped = false;
  const relink = async (): Promise<void> => {
    // The gate host died under a running agent: a new one takes the ports and the gates open as last known.
    if (stopped) return;
    log.error('lost the gate host; starting another');
    for (let attempt = 0; !stopped; attempt++) {
      try {
        gates = await GateLink.open(options.dataDir, log);
        gates.once('lost', () => void relink());
        for (const instance of instances.values()) await instance.gate.reopen(gates);
        return;
      } catch (err) {
        log.error({ err: (err as Error).message, attempt }, 'could not restart the gate host');
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  };
  gates.once('lost', () => void relink());
  // An agent restart brings back the apps that were running before it.
  await Promise.all([...instances.values()].map((i) => i.restore(log)));

  let session: ControllerSession | undefined;
  const link = controllerLink(options, log);
  /** From the controller's Welcome: artifact URLs under it get the credential. */
  let artifactBase = '';
  const downloads = artifactAccess(options, link, () => artifactBase);
  const dispatcher = new CommandDispatcher({ state, instances, events, options, logger: log, send: (result) => session?.sendResult(result), downloads, keeper: runtime.keeper });
  session = new ControllerSession({
    controller: options.controller,
    logger: log,
    hello: () => buildHello(options, instances, signer),
    onCommand: (command) => dispatcher.dispatch(command),
    runningCommandIds: () => dispatcher.runningIds(),
    link,
    onWelcome: (welcome) => {
      artifactBase = welcome.artifactBaseUrl;
      // The controller has our Hello and version: an upgrade on trial is committed by the keeper.
      runtime.keeper?.connected(AGENT_VERSION);
      // Events wait (in order) until the controller has our Hello and key: it refuses events of agents it does not know.
      events.start();
    },
  });
  session.start();
  if (options.joinTokenSource === 'flag' && !options.insecure) {
    log.warn('the join token was given as --join-token, which any local user can read in ps; use --join-token-file or FLEETWAVE_JOIN_TOKEN');
  }
  if (options.appUser && !options.runAs) log.warn({ appUser: options.appUser }, 'the agent is not root, so apps run as its own user, not --app-user');
  log.info({ controller: options.controller, instances: options.instances.map((i) => i.app), dataDir: options.dataDir }, 'agent started');

  let stopping: Promise<void> | undefined;
  return {
    stop: (stopOptions) =>
      (stopping ??= (async () => {
        const keep = stopOptions?.keepDataPath ?? false;
        log.info({ keepDataPath: keep }, 'agent stopping');
        stopped = true;
        await session.close();
        if (keep) {
          for (const instance of instances.values()) instance.detach();
        } else {
          await Promise.all([...instances.values()].map((i) => i.close()));
          await gates.shutdownHost();
        }
        gates.close();
        await events.close();
        await state.flush();
        log.info(keep ? 'agent stopped; apps and gates keep running' : 'agent stopped');
      })()),
    servicePorts: () => Object.fromEntries([...instances.values()].map((i) => [i.app, i.gate.port])),
    gateStats: async () => Object.fromEntries(await Promise.all([...instances.values()].map(async (i) => [i.app, await i.gate.stats()] as const))),
  };
}

async function buildHello(options: AgentOptions, instances: Map<string, Instance>, signer: EventSigner): Promise<Hello> {
  return {
    agentId: options.id,
    host: hostname(),
    group: options.group,
    labels: options.labels,
    bootId: options.bootId,
    version: AGENT_VERSION,
    advertiseAddress: options.advertise,
    instances: await Promise.all([...instances.values()].map((i) => i.report())),
    // Last, so the controller compares clocks with as little delay between stamping and sending as it can.
    sentUnixMs: Date.now(),
    eventPublicKey: signer.publicKey,
    // Until the next upgrade is staged: the controller fails that agent's upgrade step with it.
    upgradeFailure: readFailure(options.dataDir),
  };
}
