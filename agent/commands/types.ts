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
export type CommandKind = 'downloadPackage' | 'quiesce' | 'stopApp' | 'startApp' | 'restartApp' | 'hardResetServer' | 'healthCheck';

export interface CommandContext {
  command: Command;
  /** The instance of `command.app`. */
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
}

export interface CommandOutcome {
  /** Edition active after the command, when the handler changed or checked it. */
  activeEdition?: string;
  /** RestartApp: the update order the agent used. */
  updateOrder?: string;
}

export interface CommandHandler<K extends CommandKind = CommandKind> {
  kind: K;
  /** Must be idempotent: an agent that died mid-command runs it again on the next delivery. */
  run(ctx: CommandContext, body: NonNullable<Command[K]>): Promise<CommandOutcome>;
}

export function kindOf(command: Command): CommandKind | undefined {
  const kinds: CommandKind[] = ['downloadPackage', 'quiesce', 'stopApp', 'startApp', 'restartApp', 'hardResetServer', 'healthCheck'];
  return kinds.find((k) => command[k] !== undefined);
}
