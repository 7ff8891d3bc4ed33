// Paged, filtered fleet listings with their summaries: `agent list`, `instance list` and the instances of `release show`.
//
// Keyset paging: a page is `WHERE <filters> AND key > cursor ORDER BY key LIMIT n+1` on an index (migration 9), so it
// costs O(n) whatever the fleet's size, and the n+1th row says whether there is a next page. The summary (counts per
// group or batch, and status, over every page) is one GROUP BY over an index, read in the same transaction as the page
// so rows and counts agree. Statements are prepared once per store and filter shape (which filters are set): each
// shape gets the SQL, and so the index, that fits it.
//
//   page 1: after ''  ──▶ rows 1..n,    next_after = key(row n)
//   page 2: after key ──▶ rows n+1..2n, next_after = key(row 2n)
//   last:              ──▶ rows …,       next_after = ''
import type { Database, Statement } from 'better-sqlite3';
import { BadInputError, NotFoundError } from '../../common/errors.js';
import { AGENT_STATUSES, INSTANCE_LIST_STATUSES, checkListFilter, pageSize, type ListFilter } from '../../common/listing.js';
import { INSTANCE_STATUSES } from '../domain/transitions.js';
import { getReleaseRow, prepared } from './releases.js';
import { toAgent, toBatch, toChange, toInstance, toReleaseInstance, toStep } from './rows.js';
import type { AgentRecord, AgentStatus, InstanceRecord, ReleaseDetailRecord } from '../domain/records.js';

/** A listing request: its filters, the page size asked for (0: the default) and the previous page's cursor. */
export interface PageQuery extends ListFilter {
  limit: number;
  after: string;
}

/** Rows of one (group or batch, status): the summary of a listing. */
export interface SummaryCountRecord {
  group: string;
  /** The batch in a release's listing; 0 in agent and instance listings. */
  batch: number;
  status: string;
  count: number;
}

export interface ListSummaryRecord {
  /** Rows matching the filters, over every page. */
  total: number;
  counts: SummaryCountRecord[];
}

export interface Page<T> {
  rows: T[];
  summary: ListSummaryRecord;
  /** The cursor of the next page; '' on the last. */
  nextAfter: string;
}

/** One page of a release's instances, with everything else of the release whole (batches, changes). */
export interface ReleaseDetailPage extends ReleaseDetailRecord {
  summary: ListSummaryRecord;
  nextAfter: string;
}

export type InstanceListRow = InstanceRecord & { agentStatus: AgentStatus };

/** An instance's listed status: unreachable with its agent, else its process's state (as admin-mapping shows it). */
const INSTANCE_STATUS_SQL = `CASE WHEN a.status = 'unreachable' THEN 'unreachable' ELSE i.process_state END`;
/** An instance's edition in a release's listing: what it runs now, else what it ran before the release. */
const RELEASE_EDITION_SQL = `coalesce(h.active_edition, ri.from_edition, '')`;

export class ListQueries {
  constructor(private readonly db: Database) {}

  /** Agents by id. `edition`: agents with an instance (of any app) running it. */
  agents(q: PageQuery): Page<AgentRecord> {
    const f = checkListFilter(q, AGENT_STATUSES);
    const where = [
      f.group ? 'a.grp = @group' : '',
      f.status ? 'a.status = @status' : '',
      f.edition ? 'EXISTS (SELECT 1 FROM instances i WHERE i.agent_id = a.id AND i.active_edition = @edition)' : '',
    ];
    const key = q.after ? decodeCursor(q.after, 'a', ['string']) : undefined;
    const limit = pageSize(q.limit);
    const params = { ...f, k1: key?.[0], limit: limit + 1 };
    return this.db.transaction(() => {
      const rows = this.all(`SELECT a.* FROM agents a ${whereSql([...where, key ? 'a.id > @k1' : ''])} ORDER BY a.id LIMIT @limit`, params).map(toAgent);
      const counts = this.all(
        `SELECT a.grp AS grp, 0 AS batch, a.status AS status, count(*) AS n FROM agents a ${whereSql(where)} GROUP BY a.grp, a.status ORDER BY a.grp, a.status`,
        params,
      );
      return pageOf(rows, limit, counts, (last) => encodeCursor('a', [last.id]));
    })();
  }

  /** Instances of an app (all apps when ''), by app, group and agent id, with their agent's status. */
  instances(app: string, q: PageQuery): Page<InstanceListRow> {
    const f = checkListFilter(q, INSTANCE_LIST_STATUSES);
    const where = [
      app ? 'i.app = @app' : '',
      f.group ? 'i.grp = @group' : '',
      f.edition ? 'i.active_edition = @edition' : '',
      f.status ? `${INSTANCE_STATUS_SQL} = @status` : '',
    ];
    const key = q.after ? decodeCursor(q.after, 'i', ['string', 'string', 'string']) : undefined;
    const limit = pageSize(q.limit);
    const params = { ...f, app, k1: key?.[0], k2: key?.[1], k3: key?.[2], limit: limit + 1 };
    const from = 'FROM instances i JOIN agents a ON a.id = i.agent_id';
    return this.db.transaction(() => {
      if (app && !this.get('SELECT 1 FROM apps WHERE name = ?', app)) throw new NotFoundError(`app '${app}' does not exist`);
      const rows = this.all(
        `SELECT i.*, a.status AS agent_status ${from} ${whereSql([...where, key ? '(i.app, i.grp, i.agent_id) > (@k1, @k2, @k3)' : ''])}
         ORDER BY i.app, i.grp, i.agent_id LIMIT @limit`,
        params,
      ).map((r) => ({ ...toInstance(r), agentStatus: r.agent_status as AgentStatus }));
      const counts = this.all(
        `SELECT i.grp AS grp, 0 AS batch, ${INSTANCE_STATUS_SQL} AS status, count(*) AS n ${from} ${whereSql(where)} GROUP BY 1, 3 ORDER BY 1, 3`,
        params,
      );
      return pageOf(rows, limit, counts, (last) => encodeCursor('i', [last.app, last.group, last.agentId]));
    })();
  }

  /**
   * A release with one page of its instances (by batch, then id), their steps and editions; batches and change
   * records whole. Steps are read for the page's instances only, so a page costs O(n × steps), not O(N × steps).
   */
  releaseDetail(id: string, q: PageQuery): ReleaseDetailPage {
    const f = checkListFilter(q, INSTANCE_STATUSES);
    const key = q.after ? decodeCursor(q.after, 'r', ['string', 'number', 'string']) : undefined;
    if (key && key[0] !== id) throw badCursor(q.after);
    const limit = pageSize(q.limit);
    return this.db.transaction(() => {
      const release = getReleaseRow(this.db, id);
      const where = [
        'ri.release_id = @id',
        f.group ? 'ri.grp = @group' : '',
        f.status ? 'ri.status = @status' : '',
        f.edition ? `${RELEASE_EDITION_SQL} = @edition` : '',
      ];
      const params = { ...f, id, app: release.app, k2: key?.[1], k3: key?.[2], limit: limit + 1 };
      const from = 'FROM release_instances ri LEFT JOIN instances h ON h.app = @app AND h.agent_id = ri.instance';
      const rows = this.all(
        `SELECT ri.*, ${RELEASE_EDITION_SQL} AS edition_now ${from} ${whereSql([...where, key ? '(ri.batch, ri.instance) > (@k2, @k3)' : ''])}
         ORDER BY ri.batch, ri.instance LIMIT @limit`,
        params,
      );
      const batches = this.all('SELECT * FROM batches WHERE release_id = ? ORDER BY number', id).map(toBatch);
      const groupOf = new Map(batches.map((b) => [b.number, b.group]));
      // Without an edition filter the join is not needed: the count reads the (release, status, batch) index alone.
      const countFrom = f.edition ? from : 'FROM release_instances ri';
      const counts = this.all(`SELECT ri.batch AS batch, ri.status AS status, count(*) AS n ${countFrom} ${whereSql(where)} GROUP BY 1, 2 ORDER BY 1, 2`, params)
        .map((c) => ({ ...c, grp: groupOf.get(c.batch) ?? '' }));
      const page = pageOf(rows, limit, counts, (last) => encodeCursor('r', [id, last.batch, last.instance]));
      const ids = JSON.stringify(page.rows.map((r) => r.instance));
      const steps = this.all('SELECT * FROM steps WHERE release_id = ? AND instance IN (SELECT value FROM json_each(?)) ORDER BY id', id, ids).map(toStep);
      const changes = this.all('SELECT * FROM change_records WHERE release_id = ? ORDER BY id', id).map(toChange);
      const editions: Record<string, string> = {};
      for (const row of page.rows) editions[row.instance] = row.edition_now;
      return { release, batches, instances: page.rows.map(toReleaseInstance), steps, changes, editions, summary: page.summary, nextAfter: page.nextAfter };
    })();
  }

  private statement(sql: string): Statement {
    return prepared(this.db, sql);
  }

  // Rows come from better-sqlite3 as plain objects of unknown shape.
  private all(sql: string, ...params: unknown[]): any[] {
    return this.statement(sql).all(...params) as any[];
  }

  private get(sql: string, ...params: unknown[]): unknown {
    return this.statement(sql).get(...params);
  }
}

function whereSql(parts: string[]): string {
  const set = parts.filter(Boolean);
  return set.length ? `WHERE ${set.join(' AND ')}` : '';
}

/** Cuts the n+1th row off (it only says there is more) and sums the counts. */
function pageOf<T>(rows: T[], limit: number, counts: Array<{ grp: string; batch: number; status: string; n: number }>, cursor: (last: T) => string): Page<T> {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const summary = {
    total: counts.reduce((sum, c) => sum + c.n, 0),
    counts: counts.map((c) => ({ group: c.grp, batch: c.batch, status: c.status, count: c.n })),
  };
  return { rows: page, summary, nextAfter: more ? cursor(page[page.length - 1]!) : '' };
}

/** A cursor: the listing's kind and the last row's key, as base64url JSON. Opaque to callers. */
export function encodeCursor(kind: string, key: Array<string | number>): string {
  return Buffer.from(JSON.stringify([kind, ...key])).toString('base64url');
}

/** The key in a cursor of this kind; BadInputError (exit 2) for anything else. */
export function decodeCursor(text: string, kind: string, types: Array<'string' | 'number'>): Array<string | number> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw badCursor(text);
  }
  if (!Array.isArray(value) || value.length !== types.length + 1 || value[0] !== kind) throw badCursor(text);
  const key = value.slice(1) as unknown[];
  if (!key.every((part, i) => typeof part === types[i])) throw badCursor(text);
  return key as Array<string | number>;
}

function badCursor(text: string): BadInputError {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return new BadInputError(`--after: '${shown}' is not a cursor of this listing (use the next page cursor it printed)`);
}
