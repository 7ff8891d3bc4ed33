// The controller's NATS link: publishes release events (buffered while NATS is away), feeds instance events to the engine.
//
// The controller must work without NATS: connecting is retried forever in the background, publishing never
// blocks, and a lost `drained` event only makes a drain last its full interval.
import { connect, nanos, StorageType, type NatsConnection, type Subscription } from 'nats';
import { CONTROLLER_INSTANCE_EVENTS, INSTANCE_EVENTS, STREAM_NAME, SUBJECT_ROOT, TYPE_PREFIX, type CloudEvent } from '../common/events.js';
import type { Logger } from '../common/logger.js';
import type { NatsAuth } from '../common/nats-auth.js';
import { NatsOutbox } from '../common/nats-outbox.js';
import type { EventHub } from './event-hub.js';

export interface NatsBridgeOptions {
  url: string;
  /** NATS credentials (user/pass, token, creds or nkey); none by default. */
  auth?: NatsAuth;
  logger: Logger;
  hub: EventHub;
  /** An agent published `drained` for an instance. */
  onDrained: (app: string, instance: string) => void;
  /** Events kept while disconnected; the oldest are dropped beyond it. */
  bufferLimit?: number;
  /** How long JetStream keeps events. */
  maxAgeMs?: number;
  onEvent?: (source: 'published' | 'received') => void;
}

const DRAINED_TYPE = `${TYPE_PREFIX}.instance.${INSTANCE_EVENTS.drained}`;
const CONTROLLER_INSTANCE_TYPES: ReadonlySet<string> = new Set(CONTROLLER_INSTANCE_EVENTS.map((r) => `${TYPE_PREFIX}.instance.${r}`));
const INSTANCE_SUBJECTS = `${SUBJECT_ROOT}.*.instance.*`;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

export class NatsBridge {
  private nc: NatsConnection | null = null;
  private sub: Subscription | null = null;
  /** Release events in order until the server confirmed them (nats.js drops what it holds when a connection breaks). */
  private readonly outbox: NatsOutbox;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly encoder = new TextEncoder();

  constructor(private readonly o: NatsBridgeOptions) {
    this.log = o.logger;
    this.outbox = new NatsOutbox(o.logger, o.bufferLimit ?? 10_000);
  }

  /** Starts connecting in the background; returns at once. */
  start(): void {
    void this.connectLoop(RETRY_MIN_MS);
  }

  get connected(): boolean {
    return this.nc !== null && !this.nc.isClosed();
  }

  /** Publishes to NATS (or buffers) and to the in-process hub. Never throws. */
  publish(subject: string, event: CloudEvent): void {
    this.o.hub.publish(subject, event);
    this.o.onEvent?.('published');
    this.outbox.publish(subject, this.encoder.encode(JSON.stringify(event)), event.id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // The last release events (Released, …) leave before the controller does, if NATS is there.
    if (this.nc && !this.nc.isClosed()) await this.outbox.settle(1_000);
    const nc = this.nc;
    this.nc = null;
    if (nc && !nc.isClosed()) {
      try {
        await nc.drain();
      } catch {
        await nc.close().catch(() => {});
      }
    }
  }

  private async connectLoop(delayMs: number): Promise<void> {
    if (this.stopped) return;
    try {
      // After the first connect the client reconnects by itself, forever.
      const nc = await connect({ ...this.o.auth, servers: this.o.url, name: 'fleetwave-controller', reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 1_000 });
      if (this.stopped) {
        await nc.close();
        return;
      }
      this.nc = nc;
      this.log.info({ url: this.o.url }, 'nats connected');
      void this.watchStatus(nc);
      await this.ensureStream(nc);
      this.subscribe(nc);
      this.outbox.connectedTo(nc);
      void nc.closed().then((err) => {
        if (this.nc === nc) this.nc = null;
        this.outbox.disconnected();
        if (!this.stopped) {
          this.log.warn({ err }, 'nats connection closed; reconnecting');
          this.scheduleRetry(RETRY_MIN_MS);
        }
      });
    } catch (err) {
      if (delayMs === RETRY_MIN_MS) this.log.warn({ url: this.o.url, err: (err as Error).message }, 'nats unreachable; retrying in the background');
      this.scheduleRetry(Math.min(RETRY_MAX_MS, delayMs * 2));
    }
  }

  private scheduleRetry(delayMs: number): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => void this.connectLoop(delayMs), delayMs);
    this.retryTimer.unref();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.outbox.disconnected();
        this.log.warn({ server: status.data, pending: this.outbox.pending }, 'nats disconnected');
      }
      if (status.type === 'reconnect') {
        this.log.info({ server: status.data, pending: this.outbox.pending }, 'nats reconnected');
        this.outbox.connectedTo(nc);
      }
    }
  }

  /** Creates the JetStream stream if missing; a server without JetStream still carries core events. */
  private async ensureStream(nc: NatsConnection): Promise<void> {
    try {
      const jsm = await nc.jetstreamManager({ timeout: 5_000 });
      try {
        await jsm.streams.info(STREAM_NAME);
      } catch {
        await jsm.streams.add({
          name: STREAM_NAME,
          subjects: [`${SUBJECT_ROOT}.>`],
          storage: StorageType.File,
          max_age: nanos(this.o.maxAgeMs ?? 7 * 24 * 3600 * 1000),
        });
        this.log.info({ stream: STREAM_NAME }, 'jetstream stream created');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'jetstream unavailable; events are not kept');
    }
  }

  private subscribe(nc: NatsConnection): void {
    this.sub = nc.subscribe(INSTANCE_SUBJECTS, {
      callback: (err, msg) => {
        if (err) return this.log.warn({ err }, 'nats subscription error');
        this.onInstanceEvent(msg.subject, msg.data);
      },
    });
  }

  private onInstanceEvent(subject: string, data: Uint8Array): void {
    let event: CloudEvent;
    try {
      event = JSON.parse(new TextDecoder().decode(data)) as CloudEvent;
    } catch {
      return this.log.debug({ subject }, 'ignored an event that is not JSON');
    }
    // Instance events only the controller publishes are never taken from NATS: its own reached the hub when
    // published (the subscription echoes them), and anyone else's are forged.
    if (CONTROLLER_INSTANCE_TYPES.has(event.type)) return;
    this.o.hub.publish(subject, event);
    this.o.onEvent?.('received');
    if (event.type === DRAINED_TYPE) {
      const app = String(event.data?.app ?? '');
      const instance = String(event.data?.instance ?? '');
      if (app && instance) this.o.onDrained(app, instance);
    }
  }
}
