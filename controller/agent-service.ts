// The agent gRPC service: one Session stream per agent, liveness by heartbeats, command delivery from the outbox.
//
//   stream opens ─▶ Hello ─▶ connected (Welcome, pending commands re-sent) ─▶ heartbeats / results …
//                                  └─ silent > heartbeat timeout, stream closed, or newer session ─▶ unreachable
import * as grpc from '@grpc/grpc-js';
import { hostOfPeer, isAdvertiseAddress, parseAdvertiseAddress } from '../common/addresses.js';
import { CLOCK_SKEW_WARN_MS } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { Command, type AgentMessage, type AgentServiceServer, type CommandResult, type ControllerMessage, type Hello } from '../proto/gen/fleetwave/v1/agent.js';
import type { CommandSink } from './engine/engine.js';
import { groupRefusal } from './join-scopes.js';
import { commandKind } from './engine/commands.js';
import { recordUnquiesceResult, unquiesceCommands } from './unquiesce.js';
import type { ControllerMetrics } from './metrics.js';
import type { PendingCommand } from './domain/ports.js';
import type { AgentHello, Store } from './store/store.js';

/** Why the controller lost an agent: it fell silent, or its stream ended or broke. */
export type UnreachableReason = 'heartbeat timeout' | 'stream closed';

/** An agent became unreachable, or reachable again; `apps` are the instances it serves. */
export interface ReachabilityChange {
  agentId: string;
  reachable: boolean;
  /** Why it became unreachable ('reconnected' when it is back). */
  reason: UnreachableReason | 'reconnected';
  /** The words the log uses, one line. */
  detail: string;
  lastSeenUnixMs: number;
  /** A hard reset may reboot the host: the loss was expected. */
  expected: boolean;
  apps: string[];
}

/** What the agent service tells the engine. */
export interface AgentEvents {
  commandResult(agentId: string, result: CommandResult): void;
}

/** What the agent service tells the agent upgrade coordinator (controller/agent-upgrade.ts). */
export interface AgentUpgradeEvents {
  /** Every Hello, once the agent row is updated; before the agent's pending commands are re-sent. */
  onHello(hello: Hello): void;
  /** True when the result was an UpgradeAgent's (then the engine never sees it). */
  onResult(agentId: string, result: CommandResult): boolean;
}

export interface AgentSessionsOptions {
  store: Store;
  logger: Logger;
  heartbeatTimeoutMs: number;
  heartbeatIntervalMs?: number;
  controllerId?: string;
  metrics?: ControllerMetrics;
  now?: () => number;
  /** Checks the stream's credential when it opens; returns the agent id it may speak for (and its group scope), or throws to refuse it. */
  authenticate?: (call: SessionCall) => { agentId: string; group: string };
  /** Sent in Welcome: the agent presents its credential to artifact URLs under this base only. */
  artifactBaseUrl?: () => string;
  /** Told when an agent becomes unreachable or reachable again (the controller publishes it per instance). */
  onReachability?: (change: ReachabilityChange) => void;
}

type SessionCall = grpc.ServerDuplexStream<AgentMessage, ControllerMessage>;

interface Session {
  agentId: string;
  call: SessionCall;
  /** In memory only: no SQLite write per heartbeat. */
  lastSeen: number;
  /** Agent clock minus ours at its Hello (0 when the agent does not say). */
  clockSkewMs: number;
}

/** A silent agent is marked at most this long after its heartbeat timeout ran out (10,000 sessions scan in well under 1 ms). */
const SWEEP_INTERVAL_MS = 250;

export class AgentSessions implements CommandSink {
  private readonly sessions = new Map<string, Session>();
  private readonly store: Store;
  private readonly log: Logger;
  private readonly options: AgentSessionsOptions;
  private readonly now: () => number;
  private events: AgentEvents | undefined;
  private upgrades: AgentUpgradeEvents | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: AgentSessionsOptions) {
    this.options = options;
    this.store = options.store;
    this.log = options.logger;
    this.now = options.now ?? (() => Date.now());
  }

  /** Wires the engine in (it needs this object as its command sink, so it comes second). */
  attach(events: AgentEvents): void {
    this.events = events;
  }

  /** Wires the agent upgrade coordinator in (it sends through this object too). */
  attachUpgrades(upgrades: AgentUpgradeEvents): void {
    this.upgrades = upgrades;
  }

  handlers(): AgentServiceServer {
    return { session: (call: SessionCall) => this.onSession(call) };
  }

  startSweep(): void {
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Ends every stream (controller shutting down); agents reconnect to the next controller. */
  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    // The controller going away says nothing about the agents: no unreachable event.
    for (const session of [...this.sessions.values()]) this.drop(session, 'controller stopping', grpc.status.UNAVAILABLE, null);
  }

  get connectedCount(): number {
    return this.sessions.size;
  }

  /** Heartbeats come at least three times per timeout, so one lost or late heartbeat never marks a live agent unreachable. */
  get heartbeatIntervalMs(): number {
    return this.options.heartbeatIntervalMs ?? Math.max(250, Math.min(5_000, Math.floor(this.options.heartbeatTimeoutMs / 3)));
  }

  lastSeen(agentId: string): number | undefined {
    return this.sessions.get(agentId)?.lastSeen;
  }

  /** 0 for an agent not connected. */
  clockSkew(agentId: string): number {
    return this.sessions.get(agentId)?.clockSkewMs ?? 0;
  }

  /** Writes committed commands to the streams of connected agents; the others get them on their next hello. */
  deliver(commands: PendingCommand[]): void {
    for (const c of commands) {
      const session = this.sessions.get(c.agentId);
      if (session) this.write(session, c);
    }
  }

  private write(session: Session, c: PendingCommand): void {
    const command = Command.decode(c.payload);
    command.timeoutMs = timeLeft(command.deadlineUnixMs, this.now());
    session.call.write({ command });
    this.options.metrics?.commandsSent.inc({ kind: commandKind(command) });
  }

  /** Closes the agent's stream (it was revoked); true when one was open. */
  disconnect(agentId: string, reason: string): boolean {
    const session = this.sessions.get(agentId);
    if (session) this.drop(session, reason, grpc.status.UNAUTHENTICATED, 'stream closed');
    return session !== undefined;
  }

  private onSession(call: SessionCall): void {
    let session: Session | undefined;
    let allowed: { agentId: string; group: string } | undefined;
    try {
      allowed = this.options.authenticate?.(call);
    } catch (err) {
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: (err as Error).message });
      return;
    }
    call.on('data', (message: AgentMessage) => {
      try {
        if (message.hello) {
          if (allowed && message.hello.agentId !== allowed.agentId) {
            this.log.warn({ agent: message.hello.agentId, credentialOf: allowed.agentId }, 'agent stream refused: credential belongs to another agent');
            call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: `this credential belongs to agent '${allowed.agentId}'` });
            return;
          }
          const wrongGroup = allowed ? groupRefusal(allowed.group, message.hello.group, allowed.agentId) : null;
          if (wrongGroup) {
            this.log.warn({ agent: allowed!.agentId, group: message.hello.group, allowedGroup: allowed!.group }, 'agent stream refused: group outside its join token');
            call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: wrongGroup });
            return;
          }
          session = this.onHello(call, message.hello, session) ?? session;
          return;
        }
        if (!session) {
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'the first message of a session must be Hello' });
          return;
        }
        session.lastSeen = this.now();
        if (message.result) {
          this.options.metrics?.commandResults.inc({ outcome: message.result.ok ? 'ok' : 'failed' });
          if (this.upgrades?.onResult(session.agentId, message.result)) return;
          if (!recordUnquiesceResult(this.store, session.agentId, message.result, this.now())) this.events?.commandResult(session.agentId, message.result);
        }
      } catch (err) {
        this.log.error({ err, agent: session?.agentId }, 'agent message failed');
      }
    });
    const closed = (reason: string) => {
      if (session) this.lost(session, reason, 'stream closed');
    };
    call.on('end', () => {
      closed('stream ended');
      call.end();
    });
    call.on('error', (err) => closed(`stream error: ${err.message}`));
    call.on('cancelled', () => closed('stream cancelled'));
  }

  private onHello(call: SessionCall, hello: Hello, current: Session | undefined): Session | undefined {
    if (!hello.agentId || (current && current.agentId !== hello.agentId)) {
      const details = hello.agentId ? 'a session serves one agent id' : 'Hello needs an agent_id';
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details });
      return undefined;
    }
    const now = this.now();
    const before = this.store.markAgentConnected(toAgentHello(hello, this.addressOf(hello, call)), now);
    try {
      this.upgrades?.onHello(hello);
    } catch (err) {
      // The session goes on: the upgrade's deadline still ends a target this Hello could not move.
      this.log.error({ err, agent: hello.agentId }, 'agent upgrade could not take this Hello');
    }
    const previous = this.sessions.get(hello.agentId);
    const session: Session = current ?? { agentId: hello.agentId, call, lastSeen: now, clockSkewMs: 0 };
    session.lastSeen = now;
    session.clockSkewMs = hello.sentUnixMs > 0 ? hello.sentUnixMs - now : 0;
    if (Math.abs(session.clockSkewMs) > CLOCK_SKEW_WARN_MS) {
      // Deadlines travel as durations, so nothing breaks; but this host's logs and event times are off by as much.
      this.log.warn({ agent: hello.agentId, clockSkewMs: session.clockSkewMs }, 'agent clock differs from the controller clock');
    }
    if (previous && previous.call !== call) {
      this.sessions.delete(hello.agentId);
      previous.call.emit('error', { code: grpc.status.ABORTED, details: 'replaced by a newer session of the same agent' });
    }
    this.sessions.set(hello.agentId, session);
    this.log.info({ agent: hello.agentId, group: hello.group, boot: hello.bootId, instances: hello.instances.length }, 'agent connected');
    call.write({
      welcome: { controllerId: this.options.controllerId ?? 'fleetwave-controller', heartbeatIntervalMs: this.heartbeatIntervalMs, artifactBaseUrl: this.options.artifactBaseUrl?.() ?? '' },
    });
    const pending = this.store.pendingCommandsForAgent(hello.agentId);
    for (const c of pending) this.write(session, c);
    if (pending.length) this.log.info({ agent: hello.agentId, commands: pending.length }, 're-sent commands without a result');
    if (before === 'unreachable') {
      const apps = hello.instances.map((i) => i.app);
      this.options.onReachability?.({ agentId: hello.agentId, reachable: true, reason: 'reconnected', detail: 'agent connected again', lastSeenUnixMs: now, expected: false, apps });
    }
    for (const command of unquiesceCommands(this.store, hello, now)) {
      this.log.info({ agent: hello.agentId, app: command.app }, 'instance back quiesced with no release to finish it: checking its health to let it in');
      call.write({ command });
    }
    return session;
  }

  /**
   * Where routers reach the agent's gates: its --advertise address when it gives a sane one, else the IP its session
   * comes from (behind NAT that is the NAT's: such agents need --advertise).
   */
  private addressOf(hello: Hello, call: SessionCall): string {
    const advertised = hello.advertiseAddress.trim();
    if (advertised && isAdvertiseAddress(advertised)) return parseAdvertiseAddress(advertised, 'advertise_address');
    const peer = hostOfPeer(call.getPeer());
    if (advertised) this.log.warn({ agent: hello.agentId, advertised, peer }, 'agent advertises an address that is no IP or host name; routers use its session address');
    return peer;
  }

  private sweep(): void {
    const cutoff = this.now() - this.options.heartbeatTimeoutMs;
    for (const session of [...this.sessions.values()]) {
      if (session.lastSeen < cutoff) this.drop(session, 'no heartbeat within the heartbeat timeout', grpc.status.UNAVAILABLE, 'heartbeat timeout');
    }
  }

  private drop(session: Session, reason: string, code: grpc.status, cause: UnreachableReason | null): void {
    this.lost(session, reason, cause);
    try {
      session.call.emit('error', { code, details: reason });
    } catch {
      // The stream may already be gone.
    }
  }

  /** Marks the agent unreachable, unless a newer session replaced this one; `cause` null: the controller stops. */
  private lost(session: Session, reason: string, cause: UnreachableReason | null): void {
    if (this.sessions.get(session.agentId) !== session) return;
    this.sessions.delete(session.agentId);
    if (!this.store.markAgentUnreachable(session.agentId, session.lastSeen)) return;
    // A hard reset may reboot the host: the disconnect is expected, and the step keeps its deadline.
    const expected = this.hardResetPending(session.agentId);
    if (expected) this.log.info({ agent: session.agentId, reason }, 'agent disconnected during a hard reset (expected)');
    else this.log.warn({ agent: session.agentId, reason }, 'agent unreachable');
    if (!cause || !this.options.onReachability) return;
    const apps = this.store.appsOfAgent(session.agentId);
    this.options.onReachability({ agentId: session.agentId, reachable: false, reason: cause, detail: reason, lastSeenUnixMs: session.lastSeen, expected, apps });
  }

  private hardResetPending(agentId: string): boolean {
    return this.store.hasPendingCommand(agentId, 'HardResetServer');
  }
}

function toAgentHello(hello: Hello, address: string): AgentHello {
  return {
    address,
    agentId: hello.agentId,
    host: hello.host,
    group: hello.group || 'default',
    labels: hello.labels,
    bootId: hello.bootId,
    version: hello.version,
    eventKey: hello.eventPublicKey.length > 0 ? Buffer.from(hello.eventPublicKey).toString('base64') : '',
    instances: hello.instances.map((i) => ({
      app: i.app,
      servicePort: i.servicePort,
      activeEdition: i.activeEdition,
      keptEditions: i.keptEditions,
      processState: i.processState,
      quiesced: i.quiesced,
    })),
  };
}

/**
 * What is left of a deadline, sent with every delivery: the agent counts it on its own clock, so a host whose
 * clock is off neither fails the command at once nor waits forever. 0 means no deadline; a passed one leaves 1 ms.
 */
export function timeLeft(deadlineUnixMs: number, now: number): number {
  if (deadlineUnixMs <= 0) return 0;
  return Math.min(0xffffffff, Math.max(1, deadlineUnixMs - now));
}
