// The one small interface every command kind implements, and the context a handler runs with.
//
//   received ──journaled──▶ known id with result? ──yes──▶ answer from journal (replayed)
//                               │ no
//                               ▼
//                      deadline passed? ──yes──▶ fail without running
//                               │ no
//                               ▼
//               handler.run() (idempotent: it may run again after an agent crash) ──▶ result journaled ──▶ sent
import type { Logger } from '../../common/logger.js';
import type { Command } from '../../proto/gen/fleetwave/v1/agent.js';
import type { EventSink } from '../events.js';
import type { Instance } from '../instance.js';
import type { AgentOptions } from '../options.js';
import type { DownloadAccess } from '../package/fetch.js';
import type { AgentState } from '../state.js';

/** The oneof fields of Command, one per kind. */
export type CommandKind = 'downloadPackage' | 'quiesce' | 'stopApp' | 'startApp' | 'restartApp' | 'hardResetServer' | 'healthCheck' | 'upgradeAgent';

/** Kinds that act on the agent itself, not an app: Command.app is empty and there is no instance. */
export const AGENT_KINDS: readonly CommandKind[] = ['upgradeAgent'];

export interface CommandContext {
  command: Command;
  /** The instance of `command.app` (an AGENT_KINDS handler gets none and must not read it). */
  instance: Instance;
  /** Every instance on this host (HardResetServer recycles them all). */
  instances: ReadonlyMap<string, Instance>;
  state: AgentState;
  events: EventSink;
  options: AgentOptions;
  logger: Logger;
  /** Aborted when the command's deadline passes. */
  signal: AbortSignal;
  /** The command's deadline on this host's clock (0: none), for a handler that must answer with its own reason first. */
  deadline?: number;
  /** What the handler already decided, for a result sent at the deadline while it still runs. */
  progress: { updateOrder?: string };
  /** Credential and CA for the controller's artifact URLs; none when absent. */
  downloads?: DownloadAccess;
  /** The keeper this agent runs under (--self-upgrade); absent: UpgradeAgent is refused. */
  keeper?: KeeperLink;
}

/** What the worker agent tells its keeper (agent/upgrade/keeper-link.ts). */
export interface KeeperLink {
  /** The controller welcomed this agent's Hello (an upgrade on trial is then committed). */
  connected(version: string): void;
  /** A version is staged in next.json and its result sent: stop and exit to the keeper. */
  upgradeStaged(): void;
}

export interface CommandOutcome {
  /** Edition active after the command, when the handler changed or checked it. */
  activeEdition?: string;
  /** RestartApp: the update order the agent used. */
  updateOrder?: string;
  /** UpgradeAgent: hand over to the keeper once the result is sent (never on a replay). */
  restart?: boolean;
}

export interface CommandHandler<K extends CommandKind = CommandKind> {
  kind: K;
  /** Must be idempotent: an agent that died mid-command runs it again on the next delivery. */
  run(ctx: CommandContext, body: NonNullable<Command[K]>): Promise<CommandOutcome>;
}

export function kindOf(command: Command): CommandKind | undefined {
  const kinds: CommandKind[] = ['downloadPackage', 'quiesce', 'stopApp', 'startApp', 'restartApp', 'hardResetServer', 'healthCheck', 'upgradeAgent'];
  return kinds.find((k) => command[k] !== undefined);
}
