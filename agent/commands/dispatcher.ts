// Runs commands exactly once: replays journaled results, checks deadlines, journals, runs the handler, records the result.
import type { Logger } from '../../common/logger.js';
import type { Command, CommandResult } from '../../proto/gen/fleetwave/v1/agent.js';
import type { EventSink } from '../events.js';
import type { Instance } from '../instance.js';
import type { AgentOptions } from '../options.js';
import type { DownloadAccess } from '../package/fetch.js';
import type { AgentState, StoredResult } from '../state.js';
import { handlerFor } from './index.js';
import { AGENT_KINDS, kindOf, type CommandContext, type CommandHandler, type CommandOutcome, type KeeperLink } from './types.js';

export interface DispatcherDeps {
  state: AgentState;
  instances: ReadonlyMap<string, Instance>;
  events: EventSink;
  options: AgentOptions;
  logger: Logger;
  /** Hands a result to the session (which resends it after a reconnect if needed). */
  send: (result: CommandResult) => void;
  /** Credential and CA for the controller's artifact URLs. */
  downloads?: DownloadAccess;
  /** The keeper (--self-upgrade): UpgradeAgent stages a version, then the agent exits to it. */
  keeper?: KeeperLink;
}

type Settled = { ok: true; outcome: CommandOutcome } | { ok: false; error: string; updateOrder?: string };

export class CommandDispatcher {
  /** Command ids being run now, reported in heartbeats. */
  private readonly running = new Map<string, Promise<void>>();
  /** Tail of each app's queue: commands of one app run in arrival order, different apps at once. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly deps: DispatcherDeps) {}

  runningIds(): string[] {
    return [...this.running.keys()];
  }

  /** Accepts a command; its one result goes out through `send`. */
  dispatch(command: Command): void {
    const { state, logger } = this.deps;
    const known = state.command(command.commandId);
    if (known?.result) {
      logger.info({ commandId: command.commandId, kind: known.kind }, 'command delivered again; answering from the journal');
      return void this.reply(command, { replayed: true, ...known.result });
    }
    if (this.running.has(command.commandId)) {
      logger.info({ commandId: command.commandId }, 'command delivered again while running; its result follows when done');
      return;
    }
    const app = command.app;
    // Fixed on receipt, on this host's clock: a command queued behind others of its app does not get more time.
    const deadline = localDeadline(command, Date.now());
    const run = (this.tails.get(app) ?? Promise.resolve()).then(() => this.execute(command, deadline));
    const tail = run.catch((err: Error) => logger.error({ commandId: command.commandId, err: err.message }, 'command dispatch failed'));
    this.tails.set(app, tail);
    this.running.set(command.commandId, tail);
    void tail.finally(() => {
      this.running.delete(command.commandId);
      if (this.tails.get(app) === tail) this.tails.delete(app);
    });
  }

  /** `deadline` is on this host's clock (0: none). */
  private async execute(command: Command, deadline: number): Promise<void> {
    const { state, logger } = this.deps;
    const startedUnixMs = Date.now();
    const kind = kindOf(command);
    const instance = this.deps.instances.get(command.app);
    const log = logger.child({ commandId: command.commandId, kind, app: command.app });
    let first: Settled;
    let work: Promise<Settled> | undefined;
    if (!kind) first = { ok: false, error: 'command has no kind this agent knows' };
    else if (!instance && !AGENT_KINDS.includes(kind)) first = { ok: false, error: `app ${command.app} is not served by this agent (no --instance ${command.app}:PORT)` };
    else if (deadline > 0 && startedUnixMs >= deadline) first = { ok: false, error: 'deadline passed before the command could start' };
    else {
      // The edition a switch moves to: an agent that dies mid-command restores it, not the old one (state.unfinishedSwitch).
      const edition = command.restartApp?.edition || command.startApp?.edition || undefined;
      const journalError = await state.beginCommand(command.commandId, kind, command.app, startedUnixMs, edition).then(
        () => undefined,
        (err: unknown) => describeError(err, this.deps.options.dataDir),
      );
      if (journalError !== undefined) {
        // Run unjournalled, a command could run twice after an agent restart: exactly-once matters more than this step.
        log.error({ err: journalError }, 'could not journal the command; not running it');
        first = { ok: false, error: `${kind} not run: the agent could not journal its start (${journalError})` };
      } else {
        log.info('command started');
        const run = this.runHandler(handlerFor(kind)!, command, instance, deadline, log);
        work = run.work;
        first = await run.first;
      }
    }
    const finishedUnixMs = Date.now();
    const result: StoredResult = {
      ok: first.ok,
      error: first.ok ? '' : oneLine(first.error),
      startedUnixMs,
      finishedUnixMs,
      activeEdition: (first.ok ? first.outcome.activeEdition : undefined) ?? instance?.activeEdition ?? '',
      ...(first.ok ? first.outcome.updateOrder : first.updateOrder) ? { updateOrder: (first.ok ? first.outcome.updateOrder : first.updateOrder)! } : {},
    };
    await state.finishCommand(command.commandId, result).catch((err: Error) => log.error({ err: err.message }, 'could not journal result'));
    if (result.ok) log.info({ ms: finishedUnixMs - startedUnixMs, activeEdition: result.activeEdition }, 'command succeeded');
    else log.warn({ ms: finishedUnixMs - startedUnixMs, error: result.error }, 'command failed');
    await this.reply(command, { replayed: false, ...result });
    if (first.ok && first.outcome.restart) this.deps.keeper?.upgradeStaged();
    // After a deadline the handler may still be unwinding; the app's next command waits for it.
    await work;
  }

  /** Sends a result with the instance as it stands now (for a replay too: the controller wants the present state). */
  private async reply(command: Command, result: StoredResult & { replayed: boolean }): Promise<void> {
    const instance = this.deps.instances.get(command.app);
    const report = await instance?.report().catch(() => undefined);
    this.deps.send({ commandId: command.commandId, ...result, updateOrder: result.updateOrder ?? '', instance: report });
  }

  /** Runs the handler; at the deadline it answers failure, and the app's next command still waits for the handler to stop. */
  private runHandler(handler: CommandHandler, command: Command, instance: Instance | undefined, deadlineMs: number, log: Logger): { first: Promise<Settled>; work: Promise<Settled> } {
    const abort = new AbortController();
    const progress: CommandContext['progress'] = {};
    // Only AGENT_KINDS run without an instance, and they never read it.
    const ctx: CommandContext = { ...this.deps, command, instance: instance!, logger: log, signal: abort.signal, deadline: deadlineMs, progress };
    const body = command[handler.kind] as never;
    const work = handler.run(ctx, body).then(
      (outcome): Settled => ({ ok: true, outcome }),
      (err: unknown): Settled => ({ ok: false, error: describeError(err, this.deps.options.dataDir), ...orderOf(err) }),
    );
    if (deadlineMs <= 0) return { first: work, work };
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Settled>((resolve) => {
      timer = setTimeout(() => {
        abort.abort(new Error('deadline passed'));
        resolve({ ok: false, error: `deadline passed after ${Date.now() - started} ms of ${handler.kind}`, ...(progress.updateOrder ? { updateOrder: progress.updateOrder } : {}) });
      }, deadlineMs - started);
    });
    void work.finally(() => clearTimeout(timer));
    return { first: Promise.race([work, deadline]), work };
  }
}

/**
 * The command's deadline on this host's clock. The controller sends the time left (timeout_ms) so a host whose clock
 * is off neither fails at once nor waits forever; an older controller sends only its own wall-clock deadline.
 */
export function localDeadline(command: Pick<Command, 'timeoutMs' | 'deadlineUnixMs'>, receivedAt: number): number {
  if (command.timeoutMs > 0) return receivedAt + command.timeoutMs;
  return command.deadlineUnixMs > 0 ? command.deadlineUnixMs : 0;
}

/** A full or read-only disk is named in words an operator acts on (Node's message for a failed write has no path). */
const DISK_ERRORS: Record<string, string> = { ENOSPC: 'disk full', EDQUOT: 'disk quota exceeded', EROFS: 'read-only file system' };

function describeError(err: unknown, dataDir: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const disk = DISK_ERRORS[(err as NodeJS.ErrnoException | undefined)?.code ?? ''];
  return disk ? `${disk} under the agent's data dir ${dataDir} (${message})` : message;
}

/** A restart that failed still says which update order it used (start-first failures leave the old process serving). */
function orderOf(err: unknown): { updateOrder?: string } {
  const order = (err as { updateOrder?: unknown } | undefined)?.updateOrder;
  return typeof order === 'string' && order ? { updateOrder: order } : {};
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').slice(0, 1000);
}
