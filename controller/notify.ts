// Webhook notifications: every event the controller publishes or believes is matched by kind against the notifiers
// (in memory), written as a pending delivery (SQLite), and POSTed as a structured CloudEvent until a receiver answers
// 2xx or the last attempt fails (dead). A restart resumes the pending deliveries from the store.
import { createHmac } from 'node:crypto';
import { BadInputError } from '../common/errors.js';
import type { CloudEvent } from '../common/events.js';
import type { Logger } from '../common/logger.js';
import { isSafeName } from '../common/names.js';
import { kindsOf, parseKinds } from '../common/notify-kinds.js';
import type { EventHub } from './event-hub.js';
import type { ChangeRecordRow } from './domain/records.js';
import type { DeliveryRecord, NotificationQueries, NotifierCounts, NotifierRecord } from './store/notifications.js';

/** The header with the HMAC-SHA256 of the body under the notifier's secret, as `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'fleetwave-signature-256';
/** The delivery's id: the same on every attempt of one delivery, so a receiver can drop a repeat. */
export const DELIVERY_HEADER = 'fleetwave-delivery';
export const NOTIFIER_HEADER = 'fleetwave-notifier';
const CONTENT_TYPE = 'application/cloudevents+json';
/** Delivered rows are kept this long (notify list counts them), then pruned so the table does not grow forever. */
const KEEP_DELIVERED_MS = 7 * 24 * 3600_000;
const PRUNE_EVERY_MS = 3600_000;

export interface NotifyTuning {
  /** Delay after the first failed attempt; doubles per attempt. */
  retryMinMs: number;
  /** The delay never grows beyond this. */
  retryMaxMs: number;
  /** Attempts in all before a delivery is dead. */
  maxAttempts: number;
  /** One POST may take this long. */
  requestTimeoutMs: number;
  /** POSTs under way at once, over every notifier. */
  concurrency: number;
}

export const NOTIFY_DEFAULTS: NotifyTuning = { retryMinMs: 1_000, retryMaxMs: 5 * 60_000, maxAttempts: 10, requestTimeoutMs: 10_000, concurrency: 8 };

export interface NotifyObserver {
  delivered(notifier: string): void;
  attemptFailed(notifier: string): void;
  dead(notifier: string): void;
}

export interface NotificationsOptions {
  store: NotificationQueries;
  hub: EventHub;
  logger: Logger;
  tuning: NotifyTuning;
  observer?: NotifyObserver;
  now?: () => number;
  random?: () => number;
}

export interface NewNotifier {
  name: string;
  kinds: string[];
  url: string;
  secret: string;
}

/** Delay before the attempt after `failures` failed ones: doubling from retryMinMs up to retryMaxMs, half of it jittered. */
export function retryDelay(failures: number, t: Pick<NotifyTuning, 'retryMinMs' | 'retryMaxMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(t.retryMaxMs, t.retryMinMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  // Equal jitter: never below half the ceiling (the receiver gets its breather), spread so retries do not bunch.
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class Notifications {
  private readonly log: Logger;
  private readonly now: () => number;
  /** kind → notifiers sent it; rebuilt on every add and remove, so an event costs one lookup per kind. */
  private byKind = new Map<string, NotifierRecord[]>();
  private byName = new Map<string, NotifierRecord>();
  private readonly busy = new Set<number>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly aborts = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private pruneTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly o: NotificationsOptions) {
    this.log = o.logger.child({ part: 'notify' });
    this.now = o.now ?? (() => Date.now());
  }

  start(): void {
    this.reload();
    this.unsubscribe = this.o.hub.subscribe((_subject, event) => this.onEvent(event));
    // Deliveries left pending by the last run go out again (a restart mid-retry keeps their attempt count).
    this.pump();
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  private prune(): void {
    try {
      const pruned = this.o.store.pruneDelivered(this.now() - KEEP_DELIVERED_MS);
      if (pruned > 0) this.log.info({ pruned }, 'old delivered notifications pruned');
    } catch (err) {
      this.log.warn({ err }, 'pruning delivered notifications failed');
    }
  }

  /** Stops sending; attempts under way are aborted (they stay pending and go out after the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.aborts.abort(new Error('controller stopping'));
    await Promise.allSettled([...this.inFlight]);
  }

  add(n: NewNotifier, actor: string): NotifierRecord {
    const record = checkNotifier(n, actor, this.now());
    const comment = `on ${record.kinds.join(',')} → ${record.url}${record.secret ? ' (signed)' : ''}`;
    this.o.store.addNotifier(record, this.change(actor, 'notify-add', `${record.name}: ${comment}`));
    this.reload();
    this.log.info({ notifier: record.name, kinds: record.kinds, url: record.url, signed: record.secret !== '' }, 'notifier added');
    return record;
  }

  remove(name: string, actor: string): NotifierRecord {
    const removed = this.o.store.removeNotifier(name, this.change(actor, 'notify-remove', name));
    this.reload();
    this.log.info({ notifier: name }, 'notifier removed');
    return removed;
  }

  list(): Array<NotifierRecord & NotifierCounts> {
    const counts = this.o.store.counts();
    return this.o.store.listNotifiers().map((n) => ({ ...n, ...(counts.get(n.name) ?? { pending: 0, delivered: 0, dead: 0, lastError: '' }) }));
  }

  private change(actor: string, action: string, comment: string): ChangeRecordRow {
    return { atUnixMs: this.now(), actor, action, app: '', releaseId: '', comment, result: 'ok' };
  }

  private reload(): void {
    const byKind = new Map<string, NotifierRecord[]>();
    const byName = new Map<string, NotifierRecord>();
    for (const n of this.o.store.listNotifiers()) {
      byName.set(n.name, n);
      for (const kind of n.kinds) byKind.set(kind, [...(byKind.get(kind) ?? []), n]);
    }
    this.byKind = byKind;
    this.byName = byName;
  }

  private onEvent(event: CloudEvent): void {
    if (this.stopped || this.byKind.size === 0) return;
    const matched = new Map<string, string>();
    for (const kind of kindsOf(event)) for (const n of this.byKind.get(kind) ?? []) if (!matched.has(n.name)) matched.set(n.name, kind);
    if (matched.size === 0) return;
    const payload = JSON.stringify(event);
    try {
      this.o.store.enqueue([...matched].map(([notifier, kind]) => ({ notifier, eventId: event.id, kind, payload })), this.now());
    } catch (err) {
      // The store is gone (stopping) or full: the event is lost for notifications, never for the release.
      this.log.error({ err, event: event.id }, 'notification not recorded');
      return;
    }
    this.pump();
  }

  /** Starts the due attempts (up to the concurrency), else sleeps until the next one is due. */
  private pump(): void {
    if (this.stopped) return;
    const room = this.o.tuning.concurrency - this.busy.size;
    const now = this.now();
    if (room > 0) for (const d of this.o.store.due(now, room, this.busy)) this.track(this.attempt(d));
    const next = this.o.store.nextDue();
    if (next === null || this.busy.size >= this.o.tuning.concurrency) return;
    // Rows under way are pending too; their own end pumps again, so a timer for them only wakes to find them busy.
    this.wakeAt(Math.max(next, now + 10));
  }

  private wakeAt(at: number): void {
    if (this.timer && at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, at - this.now());
    this.timer.unref();
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      this.pump();
    });
  }

  private async attempt(d: DeliveryRecord): Promise<void> {
    this.busy.add(d.id);
    try {
      const notifier = this.byName.get(d.notifier);
      // Removed meanwhile: its rows went with it.
      if (!notifier) return;
      const error = await this.post(notifier, d);
      const now = this.now();
      // Recorded even while stopping (stop waits for this before the store closes): an acknowledged event is never sent again.
      if (error === null) {
        this.o.store.markDelivered(d.id, now);
        this.o.observer?.delivered(d.notifier);
        return;
      }
      // Aborted by the stop, not refused by the receiver: the attempt does not count.
      if (this.stopped) return;
      this.o.observer?.attemptFailed(d.notifier);
      const failures = d.attempts + 1;
      const last = failures >= this.o.tuning.maxAttempts;
      this.o.store.markFailed(d.id, error, last ? null : now + retryDelay(failures, this.o.tuning, this.o.random), now);
      if (last) {
        this.o.observer?.dead(d.notifier);
        this.log.warn({ notifier: d.notifier, delivery: d.id, event: d.eventId, kind: d.kind, attempts: failures, error }, 'notification dead after its last attempt');
      } else {
        this.log.debug({ notifier: d.notifier, delivery: d.id, attempts: failures, error }, 'notification attempt failed; retrying');
      }
    } catch (err) {
      if (!this.stopped) this.log.error({ err, delivery: d.id }, 'notification attempt not recorded');
    } finally {
      this.busy.delete(d.id);
    }
  }

  /** One POST; null when the receiver acknowledged it (2xx), else the failure in a line. */
  private async post(n: NotifierRecord, d: DeliveryRecord): Promise<string | null> {
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPE, [DELIVERY_HEADER]: String(d.id), [NOTIFIER_HEADER]: n.name };
    if (n.secret) headers[SIGNATURE_HEADER] = signatureOf(n.secret, d.payload);
    try {
      const res = await fetch(n.url, {
        method: 'POST',
        headers,
        body: d.payload,
        // A redirect would send the event (and its signature) somewhere the operator did not name.
        redirect: 'manual',
        signal: AbortSignal.any([this.aborts.signal, AbortSignal.timeout(this.o.tuning.requestTimeoutMs)]),
      });
      await res.body?.cancel().catch(() => {});
      return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return (cause?.code ?? cause?.message ?? (err as Error).message ?? String(err)).split('\n')[0]!;
    }
  }
}

/** A new notifier's fields checked, one line per problem naming the flag. */
export function checkNotifier(n: NewNotifier, actor: string, now: number): NotifierRecord {
  const name = n.name.trim();
  if (!isSafeName(name)) throw new BadInputError(`notifier name '${n.name}': letters, digits, '.', '_' and '-' only, starting with a letter or digit`);
  const kinds = parseKinds(n.kinds);
  let url: URL;
  try {
    url = new URL(n.url.trim());
  } catch {
    throw new BadInputError(`--webhook: '${n.url}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BadInputError(`--webhook: '${n.url}' must start with http:// or https://`);
  if (url.username || url.password) throw new BadInputError('--webhook: put no credentials in the URL; use --secret-file to sign deliveries');
  return { name, kinds, url: url.toString(), secret: n.secret, createdBy: actor, createdUnixMs: now };
}
