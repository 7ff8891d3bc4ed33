// Publishes instance events as signed CloudEvents on the agent's NATS ingest subject, keeping them in order until the server
// confirmed them (common/nats-outbox.ts); the controller checks and republishes them (docs/events.md).
import { connect, Events, type NatsConnection } from 'nats';
import { agentSource, ingestSubject, instanceEvent, SIGNATURE_HEADER, type InstanceEventReason } from '../common/events.js';
import type { Logger } from '../common/logger.js';
import type { NatsAuth } from '../common/nats-auth.js';
import { NatsOutbox } from '../common/nats-outbox.js';
import type { EventSigner } from './event-key.js';

/** What commands and the supervisor need; tests fake it with a plain object. */
export interface EventSink {
  publish(app: string, reason: InstanceEventReason, data: Record<string, unknown>): void;
  /** Resolves once published events reached the server, or after `timeoutMs` (NATS may be away). */
  flush?(timeoutMs?: number): Promise<void>;
}

const BUFFER_LIMIT = 10_000;
const RECONNECT_WAIT_MS = 1000;

export class EventPublisher implements EventSink {
  private nc: NatsConnection | undefined;
  private closed = false;
  private started = false;
  private readonly outbox: NatsOutbox;
  private readonly encoder = new TextEncoder();
  private readonly source: string;

  constructor(
    private readonly url: string,
    private readonly agentId: string,
    private readonly logger: Logger,
    /** A function: decided when connecting (the controller may issue a NATS key only at enrolment, after start-up). */
    private readonly auth: NatsAuth | (() => NatsAuth) = {},
    /** Signs every event; without one events go unsigned (a secure controller refuses them). */
    private readonly signer?: EventSigner,
  ) {
    this.source = agentSource(agentId);
    this.outbox = new NatsOutbox(logger, BUFFER_LIMIT);
  }

  /** Starts connecting in the background; never throws, never waits for NATS. */
  start(): void {
    if (!this.url || this.started) return;
    this.started = true;
    const auth = typeof this.auth === 'function' ? this.auth() : this.auth;
    connect({
      ...auth,
      // A key the controller issues may be voided (rekey) and replaced at re-enrolment: keep trying, do not give up.
      // Credentials from flags keep nats.js's default: a wrong password ends in one clear "gave up".
      ignoreAuthErrorAbort: typeof this.auth === 'function',
      servers: this.url,
      name: `fleetwave-agent-${this.agentId}`,
      reconnect: true,
      maxReconnectAttempts: -1,
      waitOnFirstConnect: true,
      // nats.js offers no way to cancel a first connect that waits forever; throwing here ends its dial loop on close().
      reconnectDelayHandler: () => {
        if (this.closed) throw new Error('event publisher closed');
        return RECONNECT_WAIT_MS;
      },
    })
      .then((nc) => {
        if (this.closed) return void nc.close().catch(() => {});
        this.nc = nc;
        this.logger.info({ nats: this.url }, 'connected to NATS');
        this.outbox.connectedTo(nc);
        void this.watch(nc);
      })
      .catch((err: unknown) => {
        if (!this.closed) this.logger.warn({ err: String(err) }, 'NATS connection gave up; events are only logged');
      });
  }

  publish(app: string, reason: InstanceEventReason, data: Record<string, unknown>): void {
    const { event } = instanceEvent(this.source, app, this.agentId, reason, data);
    const subject = ingestSubject(app, this.agentId);
    this.logger.debug({ subject, type: event.type, data: event.data }, 'event');
    const payload = this.encoder.encode(JSON.stringify(event));
    const signature = this.signer?.sign(subject, payload);
    this.outbox.publish(subject, payload, event.id, signature ? { [SIGNATURE_HEADER]: signature } : undefined);
  }

  /** A host about to go down (a reset hook that reboots it) must not take unconfirmed events along. */
  async flush(timeoutMs = 2_000): Promise<void> {
    await this.outbox.settle(timeoutMs);
  }

  /** Number of events not yet confirmed by NATS. */
  get buffered(): number {
    return this.outbox.pending;
  }

  async close(): Promise<void> {
    this.closed = true;
    const nc = this.nc;
    if (!nc) return;
    // Give pending events a moment to leave, but never hang the agent's shutdown on NATS.
    await this.outbox.settle(1000);
    this.outbox.disconnected();
    await nc.close().catch(() => {});
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) {
        this.outbox.disconnected();
        this.logger.warn({ nats: this.url, pending: this.outbox.pending }, 'NATS disconnected; buffering events');
      } else if (status.type === Events.Reconnect) {
        this.logger.info({ nats: this.url, pending: this.outbox.pending }, 'NATS reconnected');
        this.outbox.connectedTo(nc);
      }
    }
  }
}
