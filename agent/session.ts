// Keeps one Session stream open to the controller: Hello, Welcome, heartbeats, commands in, results out; reconnects forever.
//
//   dialing ──stream open──▶ hello sent ──Welcome──▶ serving (heartbeats, commands, results)
//      ▲                        │ no Welcome in 10 s        │ stream ends or fails
//      └──── backoff (200 ms doubling to 10 s, full jitter; reset after a Welcome) ◀─┘
import { credentials, status, type ClientDuplexStream, type Metadata } from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import { detectTlsMismatch, type TlsMismatch } from '../common/tls-mismatch.js';
import { AgentServiceClient, type AgentMessage, type Command, type CommandResult, type ControllerMessage, type Hello, type Welcome } from '../proto/gen/fleetwave/v1/agent.js';
import { backoffDelay } from './backoff.js';
import type { ControllerLink } from './credentials.js';

export interface SessionDeps {
  controller: string;
  logger: Logger;
  /** Built fresh for every (re)connect, so the controller sees what runs now. */
  hello: () => Promise<Hello>;
  onCommand: (command: Command) => void;
  runningCommandIds: () => string[];
  /** TLS and the agent's credential; plaintext without one when absent. */
  link?: ControllerLink;
  /** Largest message accepted from the controller. */
  maxMessageBytes?: number;
  /** Told every Welcome: the controller's artifact base URL comes with it, and it knows this agent and its event key from then on. */
  onWelcome?: (welcome: Welcome) => void;
}

const WELCOME_TIMEOUT_MS = 10_000;
const DEFAULT_HEARTBEAT_MS = 5000;
/** Results written this shortly before a stream broke may never have arrived; they go again after the reconnect. */
const RESEND_WINDOW_MS = 5000;

const CHANNEL_OPTIONS = {
  // A blocked port or a dead NAT mapping loses no packet-level error: only an unanswered ping shows the stream is gone.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 10_000,
};

export class ControllerSession {
  private call: ClientDuplexStream<AgentMessage, ControllerMessage> | undefined;
  private welcomed = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Results that could not be written (no stream, or before Welcome). */
  private readonly unsent: CommandResult[] = [];
  private recent: { result: CommandResult; at: number }[] = [];
  /** The TLS mismatch last logged, so a reconnect loop says it once, not every backoff. */
  private mismatchLogged: TlsMismatch | null = null;
  /** Likewise for a refusal (PERMISSION_DENIED) the agent cannot fix by retrying. */
  private refusalLogged: string | undefined;

  constructor(private readonly deps: SessionDeps) {}

  start(): void {
    this.loop ??= this.run();
  }

  sendResult(result: CommandResult): void {
    if (this.call && this.welcomed) {
      this.call.write({ result });
      this.recent.push({ result, at: Date.now() });
      if (this.recent.length > 256) this.recent = this.recent.filter((r) => r.at >= Date.now() - RESEND_WINDOW_MS);
    } else {
      this.unsent.push(result);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.call?.end();
    this.call?.cancel();
    await this.loop;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      const welcomed = await this.connectOnce();
      if (this.closed) break;
      if (welcomed) attempt = 0;
      const wait = backoffDelay(attempt++);
      this.deps.logger.info({ controller: this.deps.controller, retryInMs: wait }, 'controller stream closed; reconnecting');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One stream's life; resolves when it ends, with whether the controller welcomed us. */
  private async connectOnce(): Promise<boolean> {
    let metadata: Metadata | undefined;
    try {
      metadata = await this.deps.link?.metadata();
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'cannot authenticate to the controller');
      return false;
    }
    const channelOptions = this.deps.maxMessageBytes ? { ...CHANNEL_OPTIONS, 'grpc.max_receive_message_length': this.deps.maxMessageBytes } : CHANNEL_OPTIONS;
    const client = new AgentServiceClient(this.deps.controller, this.deps.link?.credentials ?? credentials.createInsecure(), channelOptions);
    const call = metadata ? client.session(metadata) : client.session();
    this.call = call;
    let everWelcomed = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const welcomeTimer = setTimeout(() => call.cancel(), WELCOME_TIMEOUT_MS);
    const ended = new Promise<void>((resolve) => {
      call.on('status', () => resolve());
      call.on('error', (err: Error & { code?: number; details?: string }) => {
        this.deps.logger.debug({ code: err.code, details: err.details }, 'controller stream error');
        if (err.code === status.UNAUTHENTICATED) this.deps.link?.refused(err.details ?? err.message);
        if (err.code === status.UNAVAILABLE) void this.explainUnavailable(err.details ?? err.message);
        if (err.code === status.PERMISSION_DENIED && err.details !== this.refusalLogged) {
          // E.g. a group outside the join token's scope: only an operator can fix it, so say it once, loudly.
          this.refusalLogged = err.details;
          this.deps.logger.error({ controller: this.deps.controller, details: err.details }, 'controller refused this agent');
        }
      });
    });
    call.on('data', (message: ControllerMessage) => {
      if (message.welcome) {
        clearTimeout(welcomeTimer);
        everWelcomed = true;
        this.welcomed = true;
        const every = message.welcome.heartbeatIntervalMs || DEFAULT_HEARTBEAT_MS;
        clearInterval(heartbeat);
        heartbeat = setInterval(() => call.write({ heartbeat: { sentUnixMs: Date.now(), runningCommandIds: this.deps.runningCommandIds() } }), every);
        this.deps.onWelcome?.(message.welcome);
        this.deps.logger.info({ controller: this.deps.controller, controllerId: message.welcome.controllerId, heartbeatMs: every }, 'connected to controller');
        this.resendAfterReconnect();
      }
      if (message.command) this.deps.onCommand(message.command);
    });
    try {
      call.write({ hello: await this.deps.hello() });
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'could not build hello');
      call.cancel();
    }
    await ended;
    clearTimeout(welcomeTimer);
    clearInterval(heartbeat);
    this.welcomed = false;
    this.call = undefined;
    // Results written just before the break may be lost in transit: keep them for the next stream.
    const cutoff = Date.now() - RESEND_WINDOW_MS;
    this.unsent.unshift(...this.recent.filter((r) => r.at >= cutoff).map((r) => r.result));
    this.recent = [];
    client.close();
    return everWelcomed;
  }

  /** Names a TLS mismatch (plaintext agent at a TLS controller, or the reverse) instead of a bare reconnect loop. */
  private async explainUnavailable(details: string): Promise<void> {
    const mismatch = await detectTlsMismatch(this.deps.controller, this.deps.link?.credentials._isSecure() ?? false, details);
    if (!mismatch || mismatch === this.mismatchLogged) return;
    this.mismatchLogged = mismatch;
    this.deps.logger.error({ controller: this.deps.controller }, agentMismatchMessage(this.deps.controller, mismatch));
  }

  private resendAfterReconnect(): void {
    const pending = this.unsent.splice(0);
    if (pending.length > 0) this.deps.logger.info({ results: pending.length }, 'sending results of commands finished while disconnected');
    for (const result of pending) this.sendResult(result);
    const cutoff = Date.now() - RESEND_WINDOW_MS;
    this.recent = this.recent.filter((r) => r.at >= cutoff);
  }
}

export function agentMismatchMessage(controller: string, mismatch: TlsMismatch): string {
  return mismatch === 'speaks-tls'
    ? `controller at ${controller} speaks TLS; drop --insecure and pass --ca FILE (its CA certificate) and a join token`
    : `controller at ${controller} does not speak TLS (it runs --insecure); start the agent with --insecure, or give the controller TLS`;
}
