// The agent gRPC service: one Session stream per agent, liveness by heartbeats, command delivery from the outbox.
//
//   stream opens ─▶ Hello ─▶ connected (Welcome, pending commands re-sent) ─▶ heartbeats / results …
//                                  └─ silent > heartbeat timeout, stream closed, or newer session ─▶ unreachable
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import { Command, type AgentMessage, type AgentServiceServer, type CommandResult, type ControllerMessage, type Hello } from '../proto/gen/fleetwave/v1/agent.js';
import type { CommandSink } from './engine/engine.js';
import { commandKind } from './engine/commands.js';
import type { ControllerMetrics } from './metrics.js';
import type { PendingCommand, Store } from './store/store.js';

/** What the agent service tells the engine. */
export interface AgentEvents {
  commandResult(agentId: string, result: CommandResult): void;
}

export interface AgentSessionsOptions {
  store: Store;
  logger: Logger;
  heartbeatTimeoutMs: number;
  heartbeatIntervalMs?: number;
  controllerId?: string;
  metrics?: ControllerMetrics;
  now?: () => number;
  /** Checks the stream's credential when it opens; returns the agent id it may speak for, or throws to refuse it. */
  authenticate?: (call: SessionCall) => string;
}

type SessionCall = grpc.ServerDuplexStream<AgentMessage, ControllerMessage>;

interface Session {
  agentId: string;
  call: SessionCall;
  /** In memory only: no SQLite write per heartbeat. */
  lastSeen: number;
}

const SWEEP_INTERVAL_MS = 1_000;

export class AgentSessions implements CommandSink {
  private readonly sessions = new Map<string, Session>();
  private readonly store: Store;
  private readonly log: Logger;
  private readonly options: AgentSessionsOptions;
  private readonly now: () => number;
  private events: AgentEvents | undefined;
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
    for (const session of [...this.sessions.values()]) this.drop(session, 'controller stopping', grpc.status.UNAVAILABLE);
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

  /** Writes committed commands to the streams of connected agents; the others get them on their next hello. */
  deliver(commands: PendingCommand[]): void {
    for (const c of commands) {
      const session = this.sessions.get(c.agentId);
      if (session) this.write(session, c);
    }
  }

  private write(session: Session, c: PendingCommand): void {
    const command = Command.decode(c.payload);
    session.call.write({ command });
    this.options.metrics?.commandsSent.inc({ kind: commandKind(command) });
  }

  /** Closes the agent's stream (it was revoked); true when one was open. */
  disconnect(agentId: string, reason: string): boolean {
    const session = this.sessions.get(agentId);
    if (session) this.drop(session, reason, grpc.status.UNAUTHENTICATED);
    return session !== undefined;
  }

  private onSession(call: SessionCall): void {
    let session: Session | undefined;
    let allowedAgentId: string | undefined;
    try {
      allowedAgentId = this.options.authenticate?.(call);
    } catch (err) {
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: (err as Error).message });
      return;
    }
    call.on('data', (message: AgentMessage) => {
      try {
        if (message.hello) {
          if (allowedAgentId !== undefined && message.hello.agentId !== allowedAgentId) {
            this.log.warn({ agent: message.hello.agentId, credentialOf: allowedAgentId }, 'agent stream refused: credential belongs to another agent');
            call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: `this credential belongs to agent '${allowedAgentId}'` });
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
          this.events?.commandResult(session.agentId, message.result);
        }
      } catch (err) {
        this.log.error({ err, agent: session?.agentId }, 'agent message failed');
      }
    });
    const closed = (reason: string) => {
      if (session) this.lost(session, reason);
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
    this.store.markAgentConnected(toAgentHello(hello), now);
    const previous = this.sessions.get(hello.agentId);
    const session: Session = current ?? { agentId: hello.agentId, call, lastSeen: now };
    session.lastSeen = now;
    if (previous && previous.call !== call) {
      this.sessions.delete(hello.agentId);
      previous.call.emit('error', { code: grpc.status.ABORTED, details: 'replaced by a newer session of the same agent' });
    }
    this.sessions.set(hello.agentId, session);
    this.log.info({ agent: hello.agentId, group: hello.group, boot: hello.bootId, instances: hello.instances.length }, 'agent connected');
    call.write({ welcome: { controllerId: this.options.controllerId ?? 'fleetwave-controller', heartbeatIntervalMs: this.heartbeatIntervalMs } });
    const pending = this.store.pendingCommandsForAgent(hello.agentId);
    for (const c of pending) this.write(session, c);
    if (pending.length) this.log.info({ agent: hello.agentId, commands: pending.length }, 're-sent commands without a result');
    return session;
  }

  private sweep(): void {
    const cutoff = this.now() - this.options.heartbeatTimeoutMs;
    for (const session of [...this.sessions.values()]) {
      if (session.lastSeen < cutoff) this.drop(session, 'no heartbeat within the heartbeat timeout', grpc.status.UNAVAILABLE);
    }
  }

  private drop(session: Session, reason: string, code: grpc.status): void {
    this.lost(session, reason);
    try {
      session.call.emit('error', { code, details: reason });
    } catch {
      // The stream may already be gone.
    }
  }

  /** Marks the agent unreachable, unless a newer session replaced this one. */
  private lost(session: Session, reason: string): void {
    if (this.sessions.get(session.agentId) !== session) return;
    this.sessions.delete(session.agentId);
    if (!this.store.markAgentUnreachable(session.agentId, session.lastSeen)) return;
    // A hard reset may reboot the host: the disconnect is expected, and the step keeps its deadline.
    if (this.hardResetPending(session.agentId)) this.log.info({ agent: session.agentId, reason }, 'agent disconnected during a hard reset (expected)');
    else this.log.warn({ agent: session.agentId, reason }, 'agent unreachable');
  }

  private hardResetPending(agentId: string): boolean {
    return this.store.hasPendingCommand(agentId, 'HardResetServer');
  }
}

function toAgentHello(hello: Hello) {
  return {
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
