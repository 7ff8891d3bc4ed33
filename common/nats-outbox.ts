// Publishes to NATS without silently dropping: events wait in order while NATS is away and count as sent only once the server answered a ping after them.
//
//   publish ──▶ queued ──connected──▶ sent (unconfirmed) ──PONG after it──▶ done
//                 ▲                          │ disconnect (nats.js drops what it had not written)
//                 └──────── put back first ◀─┘
//
// A resent event may arrive twice: it carries its CloudEvent id as Nats-Msg-Id, so JetStream keeps one copy,
// and consumers drop duplicates by id (docs/events.md).
import { headers, type NatsConnection } from 'nats';
import type { Logger } from './logger.js';

interface Item {
  subject: string;
  data: Uint8Array;
  id: string;
  seq: number;
  /** Extra NATS headers (the agent's signature). */
  extra?: Record<string, string>;
  /** Called once the server has it (the controller then acks the ingest message it came from). */
  onConfirmed?: () => void;
}

export class NatsOutbox {
  private nc: NatsConnection | undefined;
  private connected = false;
  private queue: Item[] = [];
  private unconfirmed: Item[] = [];
  private seq = 0;
  private confirming = false;
  private dropped = 0;

  constructor(
    private readonly logger: Logger,
    private readonly limit = 10_000,
  ) {}

  /** Events not yet confirmed by the server (queued or in flight). */
  get pending(): number {
    return this.queue.length + this.unconfirmed.length;
  }

  /** NATS is (again) reachable through `nc`: queued events go out, oldest first. */
  connectedTo(nc: NatsConnection): void {
    this.nc = nc;
    this.connected = true;
    this.sendQueued();
  }

  /** NATS went away: what was sent but not confirmed goes back to the front of the queue. */
  disconnected(): void {
    this.connected = false;
    if (this.unconfirmed.length === 0) return;
    this.queue.unshift(...this.unconfirmed);
    this.unconfirmed = [];
    this.trim();
  }

  publish(subject: string, data: Uint8Array, id: string, extra?: Record<string, string>, onConfirmed?: () => void): void {
    this.queue.push({ subject, data, id, seq: ++this.seq, extra, onConfirmed });
    this.trim();
    this.sendQueued();
  }

  /** Resolves once every event is confirmed, or after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.pending > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  private sendQueued(): void {
    while (this.connected && this.queue.length > 0) {
      const item = this.queue[0]!;
      try {
        const h = headers();
        h.set('Nats-Msg-Id', item.id);
        for (const [name, value] of Object.entries(item.extra ?? {})) h.set(name, value);
        this.nc!.publish(item.subject, item.data, { headers: h });
      } catch (err) {
        this.logger.debug({ err: String(err) }, 'NATS publish failed; keeping the event');
        return;
      }
      this.queue.shift();
      this.unconfirmed.push(item);
    }
    this.confirm();
  }

  /** One ping at a time: its PONG confirms everything sent before it. */
  private confirm(): void {
    if (this.confirming || !this.connected || this.unconfirmed.length === 0) return;
    this.confirming = true;
    const upTo = this.seq;
    this.nc!.flush().then(
      () => {
        const confirmed = this.unconfirmed.filter((item) => item.seq <= upTo);
        this.unconfirmed = this.unconfirmed.filter((item) => item.seq > upTo);
        for (const item of confirmed) item.onConfirmed?.();
      },
      () => {
        // Disconnected: disconnected() puts them back.
      },
    ).finally(() => {
      this.confirming = false;
      this.confirm();
    });
  }

  private trim(): void {
    const over = this.pending - this.limit;
    if (over <= 0) return;
    this.queue.splice(0, over);
    if (this.dropped === 0 || Math.floor((this.dropped + over) / 1000) > Math.floor(this.dropped / 1000)) {
      this.logger.warn({ dropped: this.dropped + over }, 'NATS unreachable: event buffer full, oldest events dropped');
    }
    this.dropped += over;
  }
}
