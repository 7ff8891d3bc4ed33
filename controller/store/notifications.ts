// The store's notification side: webhook notifiers and their deliveries, each move of a delivery one named statement.
//
//   enqueue ─▶ pending ──2xx──▶ delivered
//                 │  ▲
//       failure   └──┘ (next attempt later, attempts + 1)
//                 │
//   last attempt  └──────────▶ dead
import type { Database } from 'better-sqlite3';
import { NotFoundError } from '../../common/errors.js';
import type { ChangeRecordRow } from '../domain/records.js';
import { AlreadyExistsError } from './errors.js';
import { insertChange, prepared } from './statements.js';
import type { Row } from './rows.js';

export interface NotifierRecord {
  name: string;
  kinds: string[];
  url: string;
  /** '' when deliveries are not signed. */
  secret: string;
  createdBy: string;
  createdUnixMs: number;
}

export interface NotifierCounts {
  pending: number;
  delivered: number;
  dead: number;
  lastError: string;
}

/** One event to send to one notifier. */
export interface DeliveryRecord {
  id: number;
  notifier: string;
  eventId: string;
  kind: string;
  /** The CloudEvent as JSON, exactly the bytes POSTed (and signed). */
  payload: string;
  attempts: number;
}

export interface NewDelivery {
  notifier: string;
  eventId: string;
  kind: string;
  payload: string;
}

function toNotifier(r: Row): NotifierRecord {
  return { name: r.name, kinds: String(r.kinds).split(',').filter(Boolean), url: r.url, secret: r.secret, createdBy: r.created_by, createdUnixMs: r.created_unix_ms };
}

function toDelivery(r: Row): DeliveryRecord {
  return { id: r.id, notifier: r.notifier, eventId: r.event_id, kind: r.kind, payload: r.payload, attempts: r.attempts };
}

export class NotificationQueries {
  constructor(private readonly db: Database) {}

  addNotifier(n: NotifierRecord, change: ChangeRecordRow): NotifierRecord {
    return this.db.transaction(() => {
      if (prepared(this.db, 'SELECT 1 FROM notifiers WHERE name = ?').get(n.name)) throw new AlreadyExistsError(`notifier '${n.name}' already exists (notify remove ${n.name} first)`);
      prepared(this.db, 'INSERT INTO notifiers (name, kinds, url, secret, created_by, created_unix_ms) VALUES (?, ?, ?, ?, ?, ?)').run(
        n.name,
        n.kinds.join(','),
        n.url,
        n.secret,
        n.createdBy,
        n.createdUnixMs,
      );
      insertChange(this.db, change);
      return n;
    })();
  }

  /** Removes the notifier with every delivery of it (pending ones are not sent any more). */
  removeNotifier(name: string, change: ChangeRecordRow): NotifierRecord {
    return this.db.transaction(() => {
      const row = prepared(this.db, 'SELECT * FROM notifiers WHERE name = ?').get(name) as Row | undefined;
      if (!row) throw new NotFoundError(`no notifier named '${name}' (notify list shows them)`);
      prepared(this.db, 'DELETE FROM notifiers WHERE name = ?').run(name);
      insertChange(this.db, change);
      return toNotifier(row);
    })();
  }

  listNotifiers(): NotifierRecord[] {
    return (prepared(this.db, 'SELECT * FROM notifiers ORDER BY name').all() as Row[]).map(toNotifier);
  }

  /** Deliveries by status, and the newest error, per notifier. */
  counts(): Map<string, NotifierCounts> {
    const out = new Map<string, NotifierCounts>();
    const rows = prepared(this.db, 'SELECT notifier, status, COUNT(*) AS n FROM notification_deliveries GROUP BY notifier, status').all() as Row[];
    for (const r of rows) {
      const c = out.get(r.notifier) ?? { pending: 0, delivered: 0, dead: 0, lastError: '' };
      if (r.status === 'pending' || r.status === 'delivered' || r.status === 'dead') c[r.status as 'pending'] = r.n;
      out.set(r.notifier, c);
    }
    const errors = prepared(
      this.db,
      `SELECT notifier, last_error FROM notification_deliveries d WHERE last_error != '' AND updated_unix_ms = (SELECT MAX(updated_unix_ms) FROM notification_deliveries WHERE notifier = d.notifier AND last_error != '')`,
    ).all() as Row[];
    for (const r of errors) {
      const c = out.get(r.notifier);
      if (c) c.lastError = r.last_error;
    }
    return out;
  }

  /** Records the deliveries of one event in one transaction; a second copy of an event (same id) is ignored. */
  enqueue(deliveries: NewDelivery[], now: number): void {
    if (deliveries.length === 0) return;
    const insert = prepared(
      this.db,
      `INSERT OR IGNORE INTO notification_deliveries (notifier, event_id, kind, payload, status, next_attempt_unix_ms, created_unix_ms, updated_unix_ms)
       VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const d of deliveries) insert.run(d.notifier, d.eventId, d.kind, d.payload, now, now, now);
    })();
  }

  /** Pending deliveries due by `now`, oldest first, leaving out `busy` (attempts under way). */
  due(now: number, limit: number, busy: ReadonlySet<number>): DeliveryRecord[] {
    const rows = prepared(
      this.db,
      `SELECT id, notifier, event_id, kind, payload, attempts FROM notification_deliveries
       WHERE status = 'pending' AND next_attempt_unix_ms <= ? ORDER BY next_attempt_unix_ms, id LIMIT ?`,
    ).all(now, limit + busy.size) as Row[];
    return rows.map(toDelivery).filter((d) => !busy.has(d.id)).slice(0, limit);
  }

  /** When the next pending delivery is due (null: none pending). */
  nextDue(): number | null {
    const at = prepared(this.db, `SELECT MIN(next_attempt_unix_ms) FROM notification_deliveries WHERE status = 'pending'`).pluck().get() as number | null;
    return at ?? null;
  }

  markDelivered(id: number, now: number): void {
    prepared(this.db, `UPDATE notification_deliveries SET status = 'delivered', attempts = attempts + 1, last_error = '', updated_unix_ms = ? WHERE id = ? AND status = 'pending'`).run(now, id);
  }

  /** A failed attempt: tried again at `nextAttemptUnixMs`, or dead when that is null. */
  markFailed(id: number, error: string, nextAttemptUnixMs: number | null, now: number): void {
    if (nextAttemptUnixMs === null) {
      prepared(this.db, `UPDATE notification_deliveries SET status = 'dead', attempts = attempts + 1, last_error = ?, updated_unix_ms = ? WHERE id = ? AND status = 'pending'`).run(error, now, id);
      return;
    }
    prepared(
      this.db,
      `UPDATE notification_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_unix_ms = ?, updated_unix_ms = ? WHERE id = ? AND status = 'pending'`,
    ).run(error, nextAttemptUnixMs, now, id);
  }

  /** Forgets delivered rows acknowledged before `before` (dead ones stay until their notifier is removed); returns how many. */
  pruneDelivered(before: number): number {
    return prepared(this.db, `DELETE FROM notification_deliveries WHERE status = 'delivered' AND updated_unix_ms < ?`).run(before).changes;
  }

  countPending(): number {
    return prepared(this.db, `SELECT COUNT(*) FROM notification_deliveries WHERE status = 'pending'`).pluck().get() as number;
  }
}
