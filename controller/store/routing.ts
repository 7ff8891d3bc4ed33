// The store's routing side: rules (routes), what the routers need of an app (default editions, held instances, its
// instances with their agents' addresses), and instances changed since a time (the routing hub's poll, on an index).
import type { Database } from 'better-sqlite3';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { AlreadyExistsError } from './errors.js';
import { activeGroups, defaultEditions, describeMatch, heldInstances, inEvaluationOrder, percentTotal, sameMatch, type DefaultRelease, type RouteRecord } from '../domain/routing.js';
import type { ChangeRecordRow, RoutePhase } from '../domain/records.js';
import { insertChange, prepared } from './statements.js';
import type { Row } from './rows.js';

/** An instance as the routers see it: its row and its agent's address. */
export interface RoutingInstanceRow {
  app: string;
  agentId: string;
  group: string;
  servicePort: number;
  activeEdition: string;
  processState: string;
  quiesced: boolean;
  /** The agent's --advertise address, else the address its session came from ('' unknown). */
  address: string;
}

/** Everything about an app the routers get besides its instances. */
export interface AppRoutingHead {
  app: string;
  healthPath: string;
  /** In evaluation order. */
  routes: RouteRecord[];
  /** The newest release that moves the default; null: the default is every edition some instance runs. */
  defaultRelease: DefaultRelease | null;
  held: Set<string>;
}

/** Per edition of an app: the groups it runs in now, and whether it is a default edition. */
export interface EditionActivity {
  groups: Map<string, string[]>;
  defaults: string[];
  /** Edition → how many instances keep it on disk (their agents' last report). */
  kept: Map<string, number>;
}

const ROUTE_COLUMNS = 'id, app, edition, kind, name, value, percent, priority, created_unix_ms, created_by';
const INSTANCE_SELECT = `SELECT i.app, i.agent_id, i.grp, i.service_port, i.active_edition, i.process_state, i.quiesced, a.address
  FROM instances i JOIN agents a ON a.id = i.agent_id`;

function toRoute(r: Row): RouteRecord {
  return {
    id: r.id,
    app: r.app,
    edition: r.edition,
    kind: r.kind,
    name: r.name,
    value: r.value,
    percent: r.percent,
    priority: r.priority,
    createdUnixMs: r.created_unix_ms,
    createdBy: r.created_by,
  };
}

function toRoutingInstance(r: Row): RoutingInstanceRow {
  return {
    app: r.app,
    agentId: r.agent_id,
    group: r.grp,
    servicePort: r.service_port,
    activeEdition: r.active_edition,
    processState: r.process_state,
    quiesced: r.quiesced === 1,
    address: r.address ?? '',
  };
}

/** Rules of the app, in evaluation order. */
export function routesOf(db: Database, app: string): RouteRecord[] {
  const rows = prepared(db, `SELECT ${ROUTE_COLUMNS} FROM routes WHERE app = ? ORDER BY priority, created_unix_ms, id`).all(app) as Row[];
  return rows.map(toRoute);
}

/** The app's newest release that moves the default (takes_default), as the default editions need it. */
export function newestDefaultRelease(db: Database, app: string): DefaultRelease | null {
  const row = prepared(db, 'SELECT edition, status, spec, from_default, route_phase, batch_count FROM releases WHERE app = ? AND takes_default = 1 ORDER BY seq DESC LIMIT 1').get(app) as
    | Row
    | undefined;
  if (!row) return null;
  return {
    edition: row.edition,
    status: row.status,
    strategy: (JSON.parse(row.spec) as { strategy: string }).strategy,
    fromDefault: JSON.parse(row.from_default),
    routePhase: row.route_phase as RoutePhase,
    batchCount: row.batch_count,
  };
}

/** The app's default editions now, given the editions its instances run (read only when no release decides). */
export function currentDefaults(db: Database, app: string, running: () => Iterable<string>): string[] {
  const newest = newestDefaultRelease(db, app);
  return defaultEditions(newest, newest ? [] : running());
}

export class RoutingQueries {
  constructor(private readonly db: Database) {}

  private appExists(app: string): void {
    if (!prepared(this.db, 'SELECT 1 FROM apps WHERE name = ?').get(app)) throw new NotFoundError(`app '${app}' does not exist`);
  }

  /**
   * Adds a rule and its change record in one transaction. Refused: an edition that does not exist (NotFound) or runs
   * nowhere (Conflict), a rule matching what another already matches, percent rules over 100 in total, and whatever
   * `check` throws (run once the app and edition exist, before the insert: the caller's refusals change nothing either).
   */
  addRoute(route: RouteRecord, change: Omit<ChangeRecordRow, 'result' | 'releaseId' | 'app' | 'action'>, check: () => void = () => {}): RouteRecord {
    const db = this.db;
    return db.transaction(() => {
      this.appExists(route.app);
      if (!prepared(db, 'SELECT 1 FROM editions WHERE app = ? AND name = ?').get(route.app, route.edition)) {
        throw new NotFoundError(`edition '${route.edition}' of app '${route.app}' does not exist`);
      }
      check();
      if (!prepared(db, 'SELECT 1 FROM instances WHERE app = ? AND active_edition = ? LIMIT 1').get(route.app, route.edition)) {
        throw new ConflictError(`edition ${route.edition} of ${route.app} is active nowhere; release it to a group first`);
      }
      const existing = routesOf(db, route.app);
      const clash = existing.find((r) => sameMatch(r, route));
      if (clash) throw new AlreadyExistsError(`route ${clash.id} of ${route.app} already matches ${describeMatch(clash)} (to edition ${clash.edition})`);
      const total = percentTotal([...existing, route]);
      if (total > 100) throw new ConflictError(`percent rules of ${route.app} would add up to ${total}%; together they may take at most 100%`);
      prepared(db, `INSERT INTO routes (${ROUTE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
        route.id, route.app, route.edition, route.kind, route.name, route.value, route.percent, route.priority, route.createdUnixMs, route.createdBy,
      );
      const result = `added route ${route.id}: ${describeMatch(route)} → edition ${route.edition} (priority ${route.priority})`;
      insertChange(db, { ...change, action: 'route-add', app: route.app, releaseId: '', result });
      return route;
    })();
  }

  /** Removes a rule and writes its change record in one transaction. */
  removeRoute(app: string, id: string, change: Omit<ChangeRecordRow, 'result' | 'releaseId' | 'app' | 'action'>): RouteRecord {
    const db = this.db;
    return db.transaction(() => {
      this.appExists(app);
      const row = prepared(db, `SELECT ${ROUTE_COLUMNS} FROM routes WHERE app = ? AND id = ?`).get(app, id) as Row | undefined;
      if (!row) throw new NotFoundError(`route '${id}' of app '${app}' does not exist`);
      const route = toRoute(row);
      prepared(db, 'DELETE FROM routes WHERE id = ?').run(id);
      insertChange(db, { ...change, action: 'route-remove', app, releaseId: '', result: `removed route ${id}: ${describeMatch(route)} → edition ${route.edition}` });
      return route;
    })();
  }

  listRoutes(app: string): RouteRecord[] {
    this.appExists(app);
    return routesOf(this.db, app);
  }

  /** Rules, default release, held instances and health path of the app, read together. */
  head(app: string): AppRoutingHead {
    return this.db.transaction(() => {
      const healthPath = prepared(this.db, 'SELECT health_path FROM apps WHERE name = ?').pluck().get(app) as string | undefined;
      if (healthPath === undefined) throw new NotFoundError(`app '${app}' does not exist`);
      const phased = prepared(
        this.db,
        `SELECT r.route_phase, b.instances FROM releases r JOIN batches b ON b.release_id = r.id AND b.number = 1
         WHERE r.app = ? AND r.route_phase = 'first-half'`,
      ).all(app) as Row[];
      const held = heldInstances(phased.map((r) => ({ routePhase: r.route_phase, firstBatch: JSON.parse(r.instances) })));
      // A validation clone being removed leaves every router's rotation before its gate quiesces: a request the gate
      // took after that would be held for an app that stops, not restarts, and answered 503.
      const removing = prepared(this.db, `SELECT clone_instances FROM validations WHERE app = ? AND status = 'removing'`).all(app) as Row[];
      for (const r of removing) for (const id of JSON.parse(r.clone_instances) as string[]) held.add(id);
      return { app, healthPath, routes: inEvaluationOrder(routesOf(this.db, app)), defaultRelease: newestDefaultRelease(this.db, app), held };
    })();
  }

  /** Every instance of the app. */
  instances(app: string): RoutingInstanceRow[] {
    return (prepared(this.db, `${INSTANCE_SELECT} WHERE i.app = ? ORDER BY i.agent_id`).all(app) as Row[]).map(toRoutingInstance);
  }

  /** Instances of the app whose row changed at or after `sinceUnixMs` (controller clock; index instances_changed). */
  instancesChangedSince(app: string, sinceUnixMs: number): RoutingInstanceRow[] {
    return (prepared(this.db, `${INSTANCE_SELECT} WHERE i.app = ? AND i.updated_unix_ms >= ?`).all(app, sinceUnixMs) as Row[]).map(toRoutingInstance);
  }

  /** The groups each edition of the app runs in, and its default editions (ListEditions). */
  editionActivity(app: string): EditionActivity {
    return this.db.transaction(() => {
      this.appExists(app);
      const rows = prepared(this.db, 'SELECT DISTINCT grp, active_edition FROM instances WHERE app = ?').all(app) as Row[];
      const instances = rows.map((r) => ({ group: r.grp as string, activeEdition: r.active_edition as string }));
      const groups = new Map<string, string[]>();
      for (const edition of new Set(instances.map((i) => i.activeEdition))) if (edition) groups.set(edition, activeGroups(instances, edition));
      const keptRows = prepared(this.db, 'SELECT k.value AS edition, COUNT(*) AS n FROM instances i, json_each(i.kept_editions) k WHERE i.app = ? GROUP BY k.value').all(app) as Row[];
      const kept = new Map(keptRows.map((r) => [String(r.edition), Number(r.n)]));
      return { groups, defaults: currentDefaults(this.db, app, () => groups.keys()), kept };
    })();
  }
}
