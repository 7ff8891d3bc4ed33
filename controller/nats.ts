// The controller's NATS link: publishes release events (buffered while NATS is away), checks the agents' instance
// events (controller/event-validation.ts), republishes the ones it believes and feeds `drained` to the engine.
//
// The controller must work without NATS: connecting is retried forever in the background, publishing never
// blocks, and a lost `drained` event only makes a drain last its full interval.
import { connect, nanos, StorageType, type NatsConnection } from 'nats';
import { instanceSubject, INSTANCE_EVENTS, STREAM_NAME, SUBJECT_ROOT, instanceType, type CloudEvent } from '../common/events.js';
import type { Logger } from '../common/logger.js';
import type { NatsAuth } from '../common/nats-auth.js';
import { NatsOutbox } from '../common/nats-outbox.js';
import type { EventHub } from './event-hub.js';
import type { IngestMessage, RejectReason, Validation } from './event-validation.js';
import { consumeIngest, RejectionLog } from './nats-ingest.js';

export interface NatsBridgeOptions {
  url: string;
  /** NATS credentials (user/pass, token, creds or nkey); none by default. */
  auth?: NatsAuth;
  logger: Logger;
  hub: EventHub;
  /** An agent published `drained` for an instance; `quiesceCommandId` names the Quiesce it ends ('' from older agents). */
  onDrained: (app: string, instance: string, quiesceCommandId: string, elapsedMs?: number) => void;
  /**
   * Decides whether an agent's event is believed (validateIngestAsync with the store's agent keys). Verdicts may come
   * back out of order; the events are still republished and acted on in the order they arrived.
   */
  validate: (message: IngestMessage) => Validation | Promise<Validation>;
  /** An agent's event was refused. */
  onRejected?: (reason: RejectReason) => void;
  /** Secure mode: a NATS server that lets anyone in is refused (anyone could publish on the agents' subjects). */
  requireAuth?: boolean;
  /** Events kept while disconnected; the oldest are dropped beyond it. */
  bufferLimit?: number;
  /** How long JetStream keeps events. */
  maxAgeMs?: number;
  onEvent?: (source: 'published' | 'received') => void;
}

const DRAINED_TYPE = instanceType(INSTANCE_EVENTS.drained);
/** The one line logged (and thrown at start-up) when a secure controller meets a NATS without auth. */
export const NATS_OPEN_MESSAGE = 'the NATS server does not require authentication, so anyone could forge agent events; secure it (docs/design.md) or pass --nats-insecure';
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

export class NatsBridge {
  private nc: NatsConnection | null = null;
  private stopIngest: (() => void) | undefined;
  private readonly rejections: RejectionLog;
  /** Release events in order until the server confirmed them (nats.js drops what it holds when a connection breaks). */
  private readonly outbox: NatsOutbox;
  private stopped = false;
  /** The server was refused for letting anyone in; logged once until a connection is accepted. */
  private refusedOpen = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly encoder = new TextEncoder();
  /** Ingested events in arrival order, each waiting for its verdict; the head leaves first. */
  private readonly ingestQueue: IngestEntry[] = [];

  constructor(private readonly o: NatsBridgeOptions) {
    this.log = o.logger;
    this.outbox = new NatsOutbox(o.logger, o.bufferLimit ?? 10_000);
    this.rejections = new RejectionLog(o.logger);
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
    this.stopIngest?.();
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
      if (this.o.requireAuth && !nc.info?.auth_required) {
        // Refused, not used: checked again on the next try, in case the operator secures the server meanwhile.
        await nc.close().catch(() => {});
        if (!this.refusedOpen) this.log.error({ url: this.o.url }, NATS_OPEN_MESSAGE);
        this.refusedOpen = true;
        return this.scheduleRetry(RETRY_MAX_MS);
      }
      this.refusedOpen = false;
      this.nc = nc;
      this.log.info({ url: this.o.url }, 'nats connected');
      void this.watchStatus(nc);
      await this.ensureStream(nc);
      this.outbox.connectedTo(nc);
      // In the background: a slow JetStream is asked again, and release events must not wait for it meanwhile.
      void consumeIngest(nc, this.log, (m, done) => this.onIngest(m, done)).then((stop) => {
        if (this.stopped || nc.isClosed()) return stop();
        this.stopIngest = stop;
      });
      void nc.closed().then((err) => {
        if (this.nc === nc) this.nc = null;
        this.stopIngest?.();
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
      const subjects = [`${SUBJECT_ROOT}.>`];
      let existing;
      try {
        existing = await jsm.streams.info(STREAM_NAME);
      } catch {
        existing = undefined;
      }
      if (existing) {
        // The stream must hold only what the controller republished: never the agents' raw ingest subjects.
        if (existing.config.subjects?.join(' ') !== subjects.join(' ')) {
          await jsm.streams.update(STREAM_NAME, { ...existing.config, subjects });
          this.log.warn({ stream: STREAM_NAME, was: existing.config.subjects, now: subjects }, 'jetstream stream subjects corrected');
        }
      } else {
        await jsm.streams.add({
          name: STREAM_NAME,
          subjects,
          storage: StorageType.File,
          max_age: nanos(this.o.maxAgeMs ?? 7 * 24 * 3600 * 1000),
        });
        this.log.info({ stream: STREAM_NAME }, 'jetstream stream created');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'jetstream unavailable; events are not kept');
    }
  }

  /** Validation may finish out of order (signatures checked on the thread pool); events leave in arrival order. */
  private onIngest(message: IngestMessage, done: () => void): void {
    const entry: IngestEntry = { message, done };
    this.ingestQueue.push(entry);
    const verdict = this.o.validate(message);
    if (!(verdict instanceof Promise)) {
      entry.verdict = verdict;
      return this.releaseIngested();
    }
    void verdict.then((v) => {
      entry.verdict = v;
      this.releaseIngested();
    });
  }

  private releaseIngested(): void {
    while (this.ingestQueue[0]?.verdict) {
      const { message, done, verdict } = this.ingestQueue.shift()!;
      this.settle(message, verdict!, done);
    }
  }

  /** A believed event goes out again on the published subject (JetStream, SSE); a refused one only counts. */
  private settle(message: IngestMessage, verdict: Validation, done: () => void): void {
    if (!verdict.ok) {
      done();
      this.o.onRejected?.(verdict.reason);
      return this.rejections.refused(verdict.reason, message.subject, verdict.detail);
    }
    const { event, app, instance } = verdict;
    const subject = instanceSubject(app, instance);
    this.o.hub.publish(subject, event);
    this.o.onEvent?.('received');
    this.outbox.publish(subject, this.encoder.encode(JSON.stringify(event)), event.id, undefined, done);
    if (event.type === DRAINED_TYPE) {
      const elapsed = event.data?.elapsedMs;
      this.o.onDrained(app, instance, String(event.data?.quiesceCommandId ?? ''), typeof elapsed === 'number' ? elapsed : undefined);
    }
  }
}

interface IngestEntry {
  message: IngestMessage;
  done: () => void;
  verdict?: Validation;
}

/** At start-up: whether the NATS server requires auth; undefined when it cannot be reached within `timeoutMs`. */
export async function natsRequiresAuth(url: string, auth: NatsAuth, timeoutMs = 3_000): Promise<boolean | undefined> {
  try {
    const nc = await connect({ ...auth, servers: url, reconnect: false, timeout: timeoutMs, name: 'fleetwave-controller-probe' });
    const required = nc.info?.auth_required === true;
    await nc.close().catch(() => {});
    return required;
  } catch {
    return undefined;
  }
}
