// Publishes instance events as CloudEvents on NATS, buffering them in order while NATS is unreachable.
import { connect, Events, type NatsConnection } from 'nats';
import { instanceEvent, type InstanceEventReason } from '../common/events.js';
import type { Logger } from '../common/logger.js';

/** What commands and the supervisor need; tests fake it with a plain object. */
export interface EventSink {
  publish(app: string, reason: InstanceEventReason, data: Record<string, unknown>): void;
}

const BUFFER_LIMIT = 10_000;
const RECONNECT_WAIT_MS = 1000;

export class EventPublisher implements EventSink {
  private nc: NatsConnection | undefined;
  private connected = false;
  private closed = false;
  private readonly buffer: { subject: string; payload: string }[] = [];
  private dropped = 0;
  private readonly encoder = new TextEncoder();
  private readonly source: string;

  constructor(
    private readonly url: string,
    private readonly agentId: string,
    private readonly logger: Logger,
  ) {
    this.source = `fleetwave/agent/${agentId}`;
  }

  /** Starts connecting in the background; never throws, never waits for NATS. */
  start(): void {
    if (!this.url) return;
    connect({
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
        this.connected = true;
        this.logger.info({ nats: this.url }, 'connected to NATS');
        this.flush();
        void this.watch(nc);
      })
      .catch((err: unknown) => {
        if (!this.closed) this.logger.warn({ err: String(err) }, 'NATS connection gave up; events are only logged');
      });
  }

  publish(app: string, reason: InstanceEventReason, data: Record<string, unknown>): void {
    const { subject, event } = instanceEvent(this.source, app, this.agentId, reason, data);
    this.logger.debug({ subject, type: event.type, data: event.data }, 'event');
    const payload = JSON.stringify(event);
    if (this.connected && this.buffer.length === 0 && this.send(subject, payload)) return;
    this.buffer.push({ subject, payload });
    if (this.buffer.length > BUFFER_LIMIT) {
      this.buffer.shift();
      if (this.dropped++ % 1000 === 0) this.logger.warn({ dropped: this.dropped }, 'NATS unreachable: event buffer full, oldest events dropped');
    }
  }

  /** Number of events waiting for NATS. */
  get buffered(): number {
    return this.buffer.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    const nc = this.nc;
    if (!nc) return;
    this.connected = false;
    // Give buffered events a moment to leave, but never hang the agent's shutdown on NATS.
    await Promise.race([nc.flush().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    await nc.close().catch(() => {});
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) {
        this.connected = false;
        this.logger.warn({ nats: this.url }, 'NATS disconnected; buffering events');
      } else if (status.type === Events.Reconnect) {
        this.connected = true;
        this.logger.info({ nats: this.url, buffered: this.buffer.length }, 'NATS reconnected');
        this.flush();
      }
    }
  }

  private flush(): void {
    while (this.connected && this.buffer.length > 0) {
      const next = this.buffer[0]!;
      if (!this.send(next.subject, next.payload)) return;
      this.buffer.shift();
    }
  }

  private send(subject: string, payload: string): boolean {
    try {
      this.nc!.publish(subject, this.encoder.encode(payload));
      return true;
    } catch (err) {
      this.logger.debug({ err: String(err) }, 'NATS publish failed; buffering');
      return false;
    }
  }
}
