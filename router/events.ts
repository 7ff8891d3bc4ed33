// Instance events from NATS (`fleetwave.events.<app>.instance.>`): a quiescing instance is drained at the router
// before the agent stops its app, without waiting for the controller's watch to say so. Only the controller publishes
// under fleetwave.events (NATS permissions, docs/events.md); an event whose subject, source and data disagree is
// dropped all the same. NATS away: the router routes on the watch alone, and reconnects forever.
import { connect, type NatsConnection, type Subscription } from 'nats';
import { agentSource, CONTROLLER_SOURCE, instanceSubject, SUBJECT_ROOT, subjectToken, TYPE_PREFIX, type CloudEvent } from '../common/events.js';
import type { Logger } from '../common/logger.js';
import type { NatsAuth } from '../common/nats-auth.js';
import { ROUTED_EVENTS } from './cache.js';

export interface InstanceEventFeedOptions {
  url: string;
  auth: NatsAuth;
  apps: readonly string[];
  routerId: string;
  logger: Logger;
  onEvent: (app: string, instance: string, reason: string, data: Record<string, unknown>) => void;
}

const RETRY_MS = 2_000;

export class InstanceEventFeed {
  private nc: NatsConnection | undefined;
  private subs: Subscription[] = [];
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private loggedFailure = '';

  constructor(private readonly o: InstanceEventFeedOptions) {}

  /** Connects in the background; never throws. */
  start(): void {
    void this.connectLoop();
  }

  /** Resolves once the subscriptions are on the server (tests publish only after this). */
  async ready(): Promise<void> {
    while (!this.nc && !this.stopped) await new Promise((r) => setTimeout(r, 25));
    await this.nc?.flush();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    for (const sub of this.subs) sub.unsubscribe();
    await this.nc?.close().catch(() => {});
  }

  private async connectLoop(): Promise<void> {
    if (this.stopped) return;
    try {
      // After the first connect nats.js reconnects by itself, forever; subscriptions come back with it.
      const nc = await connect({ ...this.o.auth, servers: this.o.url, name: `fleetwave-router-${this.o.routerId}`, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 1_000 });
      if (this.stopped) return void (await nc.close());
      this.nc = nc;
      this.loggedFailure = '';
      for (const app of this.o.apps) {
        this.subs.push(nc.subscribe(`${SUBJECT_ROOT}.${subjectToken(app)}.instance.>`, { callback: (err, msg) => !err && this.take(app, msg.subject, msg.string()) }));
      }
      this.o.logger.info({ nats: this.o.url }, 'listening to instance events');
    } catch (err) {
      const why = (err as Error).message;
      if (why !== this.loggedFailure) this.o.logger.warn({ nats: this.o.url, err: why }, 'NATS not reachable; routing on the watch alone until it is');
      this.loggedFailure = why;
      this.retryTimer = setTimeout(() => void this.connectLoop(), RETRY_MS);
    }
  }

  private take(app: string, subject: string, payload: string): void {
    const parsed = parseInstanceEvent(app, subject, payload);
    if ('dropped' in parsed) {
      this.o.logger.debug({ subject, why: parsed.dropped }, 'instance event dropped');
      return;
    }
    this.o.onEvent(app, parsed.instance, parsed.reason, parsed.data);
  }
}

/** The event's instance, reason and data, or why it is not believed (or not one the router acts on). */
export function parseInstanceEvent(app: string, subject: string, payload: string): { instance: string; reason: string; data: Record<string, unknown> } | { dropped: string } {
  let event: CloudEvent;
  try {
    event = JSON.parse(payload) as CloudEvent;
  } catch {
    return { dropped: 'not JSON' };
  }
  const prefix = `${TYPE_PREFIX}.instance.`;
  if (typeof event?.type !== 'string' || !event.type.startsWith(prefix)) return { dropped: `type ${String(event?.type)}` };
  const reason = event.type.slice(prefix.length);
  if (!ROUTED_EVENTS.includes(reason)) return { dropped: `not routed: ${reason}` };
  const data = event.data && typeof event.data === 'object' ? event.data : {};
  const instance = typeof data.instance === 'string' ? data.instance : '';
  if (data.app !== app || !instance) return { dropped: 'data names another app, or no instance' };
  if (instanceSubject(app, instance) !== subject) return { dropped: 'subject and data disagree' };
  if (event.source !== agentSource(instance) && event.source !== CONTROLLER_SOURCE) return { dropped: `source ${String(event.source)} is not the instance's agent or the controller` };
  return { instance, reason, data };
}
