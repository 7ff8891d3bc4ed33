// One simulated agent of the scale benchmark: a real Session stream to the controller, answered as agent/session.ts
// and the command dispatcher do, with no app behind it. Timers, NATS and the channel belong to its process (SimHost).
//
//   dialing ──Hello──▶ waiting for Welcome ──Welcome──▶ serving (heartbeats on the process tick, commands, results)
//      ▲                     │ none within 10 s              │ stream ends (counted as dropped)
//      └── backoff (the agent's: 200 ms doubling to 10 s, full jitter; reset by a Welcome) ◀──┘
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { KeyObject } from 'node:crypto';
import { backoffDelay } from '../../agent/backoff.js';
import { AGENT_VERSION } from '../../agent/version.js';
import type { AgentMessage, Command, CommandResult, ControllerMessage, InstanceReport } from '../../proto/gen/fleetwave/v1/agent.js';
import type { SimCounters } from './scale-protocol.js';
import { isPipelineCommand, simulateCommand, type SimEvent } from './scale-commands.js';

/** The agent's own Welcome timeout (agent/session.ts). */
export const WELCOME_TIMEOUT_MS = 10_000;

/** What a simulated agent needs from its process: one of each per process, not per agent. */
export interface SimHost {
  readonly counters: SimCounters;
  readonly delayMs: number;
  readonly bootId: string;
  readonly group: string;
  /** A new Session stream on the agent's shared channel. */
  open(agent: SimAgent): ClientDuplexStream<AgentMessage, ControllerMessage>;
  /** Runs `run` after the configured delay (one timer per process). */
  later(run: () => void): void;
  publish(agent: SimAgent, event: SimEvent): void;
  /** The heartbeat interval a Welcome asked for. */
  heartbeatEvery(ms: number): void;
  /** Step turnarounds (ms) of the current release. */
  turnaround(ms: number): void;
  /** The agent waits for a Welcome until `at` (0: no longer), or reconnects at `at` (0: not). */
  waitWelcome(agent: SimAgent, at: number): void;
  reconnectAt(agent: SimAgent, at: number): void;
}

/** Fractional Unix ms, so sub-millisecond gaps between processes on one host still show. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export class SimAgent {
  /** The stream of the current session, if any. */
  private call: ClientDuplexStream<AgentMessage, ControllerMessage> | undefined;
  welcomed = false;
  private attempt = 0;
  private opened = 0;
  /** Results by command id, answered again on a re-delivery (the agent's journal); made on first use. */
  private journal: Map<string, CommandResult> | undefined;
  /** Commands waiting out their delay. */
  private readonly running = new Set<string>();
  /** Results written while no stream was welcomed; sent after the next Welcome. */
  private unsent: CommandResult[] = [];
  /** Release timings (Unix ms): the first pipeline command, the last result. */
  firstCommandAt = 0;
  lastResultAt = 0;

  constructor(
    readonly id: string,
    readonly channel: number,
    private readonly host: SimHost,
    private readonly instance: InstanceReport,
    private readonly pid: number,
    readonly key: KeyObject,
    private readonly publicKey: Buffer,
  ) {}

  /** Opens a session (the first, or again after a drop). */
  connect(): void {
    if (this.opened++ > 0) this.host.counters.reconnects++;
    const call = this.host.open(this);
    this.call = call;
    this.host.waitWelcome(this, Date.now() + WELCOME_TIMEOUT_MS);
    call.on('data', (message: ControllerMessage) => {
      if (message.welcome) this.onWelcome(message.welcome.heartbeatIntervalMs);
      if (message.command) this.onCommand(message.command);
    });
    // A failed stream emits 'error' and then 'status'; 'status' alone says it ended.
    call.on('error', () => {});
    call.on('status', () => this.ended(call));
    call.write({ hello: this.hello() });
  }

  /** No Welcome in time: the agent gives up on this stream. */
  welcomeTimedOut(): void {
    this.host.counters.welcomeTimeouts++;
    this.call?.cancel();
  }

  heartbeat(): void {
    if (!this.call || !this.welcomed) return;
    this.host.counters.heartbeats++;
    this.call.write({ heartbeat: { sentUnixMs: Date.now(), runningCommandIds: this.running.size ? [...this.running] : [] } });
  }

  /** Ends the stream for good (the benchmark is over). */
  close(): void {
    const call = this.call;
    this.call = undefined;
    call?.cancel();
  }

  resetTimings(): void {
    this.firstCommandAt = 0;
    this.lastResultAt = 0;
  }

  private hello() {
    return {
      agentId: this.id,
      host: 'scale-sim',
      group: this.host.group,
      labels: {},
      bootId: this.host.bootId,
      version: AGENT_VERSION,
      instances: [this.instance],
      sentUnixMs: Date.now(),
      advertiseAddress: '',
      eventPublicKey: this.publicKey,
      upgradeFailure: undefined,
    };
  }

  private onWelcome(heartbeatMs: number): void {
    this.host.waitWelcome(this, 0);
    this.host.heartbeatEvery(heartbeatMs);
    if (!this.welcomed) this.host.counters.connected++;
    this.welcomed = true;
    this.attempt = 0;
    const pending = this.unsent;
    this.unsent = [];
    for (const result of pending) this.send(result);
  }

  private ended(call: ClientDuplexStream<AgentMessage, ControllerMessage>): void {
    if (this.call !== call) return;
    this.call = undefined;
    this.host.waitWelcome(this, 0);
    if (this.welcomed) {
      this.host.counters.streamsDropped++;
      this.host.counters.connected--;
    }
    this.welcomed = false;
    this.host.reconnectAt(this, Date.now() + backoffDelay(this.attempt++));
  }

  private onCommand(command: Command): void {
    const counters = this.host.counters;
    counters.commands++;
    const known = this.journal?.get(command.commandId);
    if (known) {
      counters.replays++;
      return this.send({ ...known, replayed: true, instance: { ...this.instance } });
    }
    // Delivered again while waiting out its delay: its result follows.
    if (this.running.has(command.commandId)) return;
    if (isPipelineCommand(command)) {
      const now = nowMs();
      if (this.firstCommandAt === 0) this.firstCommandAt = now;
      else if (this.running.size === 0 && this.lastResultAt > 0) this.host.turnaround(now - this.lastResultAt);
    }
    this.running.add(command.commandId);
    if (this.host.delayMs > 0) this.host.later(() => this.execute(command));
    else this.execute(command);
  }

  private execute(command: Command): void {
    const startedUnixMs = Date.now();
    const outcome = simulateCommand(this.instance, command, this.pid);
    for (const event of outcome.events) this.host.publish(this, event);
    const result: CommandResult = {
      commandId: command.commandId,
      ok: outcome.error === '',
      error: outcome.error,
      replayed: false,
      startedUnixMs: startedUnixMs - this.host.delayMs,
      finishedUnixMs: Date.now(),
      activeEdition: this.instance.activeEdition,
      instance: { ...this.instance },
      updateOrder: outcome.updateOrder,
    };
    (this.journal ??= new Map()).set(command.commandId, result);
    this.running.delete(command.commandId);
    if (command.releaseId) this.lastResultAt = nowMs();
    this.send(result);
  }

  private send(result: CommandResult): void {
    if (!this.call || !this.welcomed) {
      this.unsent.push(result);
      return;
    }
    this.host.counters.results++;
    this.call.write({ result });
  }
}
