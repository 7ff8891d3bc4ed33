// The store's statement cache and the one insert every module writes change records with.
import type { Database, Statement } from 'better-sqlite3';
import type { ChangeRecordRow } from '../domain/records.js';

/** Statements prepared once per database: preparing costs more than running most of them. */
const statements = new WeakMap<Database, Map<string, Statement>>();

export function prepared(db: Database, sql: string): Statement {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) cache.set(sql, (statement = db.prepare(sql)));
  return statement;
}

export function insertChange(db: Database, c: ChangeRecordRow): void {
  prepared(db, 'INSERT INTO change_records (at_unix_ms, actor, action, app, release_id, comment, result) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    c.atUnixMs,
    c.actor,
    c.action,
    c.app,
    c.releaseId,
    c.comment,
    c.result,
  );
}
