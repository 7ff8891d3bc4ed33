// The store's validation side: validation clones (table validations), each move of their lifecycle one transaction
// with its change record; a clone's removal writes its rule's removal and its StopApp commands (outbox) together.
import type { Database } from 'better-sqlite3';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { validationInProgress, validationTransition, type ValidationStatus } from '../domain/validation.js';
import type { RouteKind, RouteRecord } from '../domain/routing.js';
import type { ChangeRecordRow } from '../domain/records.js';
import type { RoutingQueries } from './routing.js';
import { insertChange, prepared } from './statements.js';
import type { Row } from './rows.js';

export interface ValidationRecord {
  id: string;
  app: string;
  edition: string;
  targetGroup: string;
  /** '' when the clone was named by instance. */
  cloneGroup: string;
  /** Agent ids, sorted. */
  cloneInstances: string[];
  /** Environment overrides of the clone's instances (their start and restart commands only). */
  env: Record<string, string>;
  route: { kind: RouteKind; name: string; value: string; percent: number };
  /** The rule once added ('' before, and after its removal it still names the removed rule). */
  routeId: string;
  status: ValidationStatus;
  /** Where `removing` ends: done (rolled out) or cancelled. */
  outcome: '' | 'done' | 'cancelled';
  releaseId: string;
  rolloutReleaseId: string;
  message: string;
  createdBy: string;
  createdUnixMs: number;
  finishedUnixMs: number;
}

/** A command of the clone's removal (Quiesce, then StopApp), as the outbox keeps it. */
export interface CloneCommand {
  commandId: string;
  agentId: string;
  kind: 'Quiesce' | 'StopApp';
  payload: Uint8Array;
}

type Change = Pick<ChangeRecordRow, 'atUnixMs' | 'actor' | 'comment'>;

const IN_PROGRESS_SQL = `status NOT IN ('done', 'cancelled')`;

function toValidation(r: Row): ValidationRecord {
  return {
    id: r.id,
    app: r.app,
    edition: r.edition,
    targetGroup: r.target_group,
    cloneGroup: r.clone_group,
    cloneInstances: JSON.parse(r.clone_instances),
    env: JSON.parse(r.env),
    route: { kind: r.route_kind, name: r.route_name, value: r.route_value, percent: r.route_percent },
    routeId: r.route_id,
    status: r.status,
    outcome: r.outcome,
    releaseId: r.release_id,
    rolloutReleaseId: r.rollout_release_id,
    message: r.message,
    createdBy: r.created_by,
    createdUnixMs: r.created_unix_ms,
    finishedUnixMs: r.finished_unix_ms,
  };
}

export class ValidationQueries {
  constructor(
    private readonly db: Database,
    private readonly routing: RoutingQueries,
  ) {}

  private transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  get(id: string): ValidationRecord {
    const row = prepared(this.db, 'SELECT * FROM validations WHERE id = ?').get(id) as Row | undefined;
    if (!row) throw new NotFoundError(`validation '${id}' does not exist`);
    return toValidation(row);
  }

  /** The app's validation not yet done or cancelled, or null. */
  inProgress(app: string): ValidationRecord | null {
    const row = prepared(this.db, `SELECT * FROM validations WHERE app = ? AND ${IN_PROGRESS_SQL} ORDER BY created_unix_ms DESC LIMIT 1`).get(app) as Row | undefined;
    return row ? toValidation(row) : null;
  }

  /** The validation in progress whose clone release or rollout release this is, or null. */
  ofRelease(releaseId: string): ValidationRecord | null {
    const row = prepared(this.db, `SELECT * FROM validations WHERE (release_id = ? OR rollout_release_id = ?) AND ${IN_PROGRESS_SQL} LIMIT 1`).get(
      releaseId,
      releaseId,
    ) as Row | undefined;
    return row ? toValidation(row) : null;
  }

  allInProgress(): ValidationRecord[] {
    return (prepared(this.db, `SELECT * FROM validations WHERE ${IN_PROGRESS_SQL} ORDER BY created_unix_ms`).all() as Row[]).map(toValidation);
  }

  /** Inserts a new validation (status activating); refused when the app has one in progress. */
  insert(v: ValidationRecord): void {
    this.transaction(() => {
      const current = this.inProgress(v.app);
      if (current) {
        throw new ConflictError(`app '${v.app}' already has validation ${current.id} of edition ${current.edition} (${current.status}); roll it out or cancel it first`);
      }
      prepared(
        this.db,
        `INSERT INTO validations (id, app, edition, target_group, clone_group, clone_instances, env, route_kind, route_name, route_value,
           route_percent, status, created_by, created_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'activating', ?, ?)`,
      ).run(v.id, v.app, v.edition, v.targetGroup, v.cloneGroup, JSON.stringify(v.cloneInstances), JSON.stringify(v.env), v.route.kind, v.route.name, v.route.value, v.route.percent, v.createdBy, v.createdUnixMs);
    });
  }

  /** Links the clone's release or the rollout release. */
  setRelease(id: string, field: 'release' | 'rollout', releaseId: string): void {
    const column = field === 'release' ? 'release_id' : 'rollout_release_id';
    prepared(this.db, `UPDATE validations SET ${column} = ? WHERE id = ?`).run(releaseId, id);
  }

  /** One move of the lifecycle (checked against the table), with its change record. */
  move(id: string, to: ValidationStatus, message: string, change: Change, action = 'validation'): ValidationRecord {
    return this.transaction(() => {
      const v = this.get(id);
      validationTransition(v.status, to);
      const finished = validationInProgress(to) ? 0 : change.atUnixMs;
      prepared(this.db, 'UPDATE validations SET status = ?, message = ?, finished_unix_ms = ? WHERE id = ?').run(to, message, finished, id);
      insertChange(this.db, { ...change, action, app: v.app, releaseId: v.rolloutReleaseId || v.releaseId, result: `validation ${id}: ${v.status} → ${to}: ${message}` });
      return this.get(id);
    });
  }

  /** Adds the clone's rule (with its route-add change record) and moves to validating, in one transaction. */
  addRule(id: string, route: RouteRecord, change: Change): ValidationRecord {
    return this.transaction(() => {
      this.routing.addRoute(route, change);
      prepared(this.db, 'UPDATE validations SET route_id = ? WHERE id = ?').run(route.id, id);
      return this.move(id, 'validating', `rule ${route.id} sends the selected users to the clone`, change);
    });
  }

  /**
   * Starts the clone's removal in one transaction: its rule removed (when still there), a Quiesce to every clone
   * instance in the outbox (owner: the validation; the routers drain it on quiesce.started), status removing with the
   * outcome it ends in. Sent after the commit; a controller stopped in between sends them on the agents' next hello,
   * and the agents run each command id once.
   */
  beginRemoval(id: string, outcome: 'done' | 'cancelled', quiesces: CloneCommand[], change: Change): ValidationRecord {
    return this.transaction(() => {
      const v = this.get(id);
      if (v.routeId && prepared(this.db, 'SELECT 1 FROM routes WHERE id = ?').get(v.routeId)) this.routing.removeRoute(v.app, v.routeId, change);
      this.enqueue(id, quiesces, change.atUnixMs);
      prepared(this.db, 'UPDATE validations SET outcome = ? WHERE id = ?').run(outcome, id);
      const what = outcome === 'done' ? 'rolled out' : 'cancelled';
      return this.move(id, 'removing', `${what}: rule removed, quiescing then stopping the clone's app on ${quiesces.map((s) => s.agentId).join(' ') || 'no instance'}`, change);
    });
  }

  private enqueue(id: string, commands: CloneCommand[], at: number): void {
    const insert = prepared(
      this.db,
      `INSERT INTO outbox (command_id, agent_id, release_id, instance, kind, payload, created_unix_ms, result, done) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)`,
    );
    for (const c of commands) insert.run(c.commandId, c.agentId, id, c.agentId, c.kind, Buffer.from(c.payload), at);
  }

  /** The clone's removal commands still without a result. */
  pendingCommands(id: string): number {
    return prepared(this.db, 'SELECT count(*) FROM outbox WHERE release_id = ? AND done = 0').pluck().get(id) as number;
  }

  /** Where a removal is: commands pending, the StopApps due (every quiesce answered), or its end due. */
  removalPhase(id: string): 'pending' | 'stops-due' | 'end-due' | 'none' {
    if (this.get(id).status !== 'removing') return 'none';
    if (this.pendingCommands(id) > 0) return 'pending';
    const kinds = prepared(this.db, 'SELECT DISTINCT kind FROM outbox WHERE release_id = ?').pluck().all(id) as string[];
    return kinds.includes('Quiesce') && !kinds.includes('StopApp') ? 'stops-due' : 'end-due';
  }

  /**
   * The removal's next step once every command it sent answered, in one transaction: after the quiesces, the StopApp
   * commands (`stops` builds them for the quiesced instances; returned to be sent after the commit); after those, the
   * end (done or cancelled). Nothing while commands are pending, or when the validation is not removing.
   */
  advanceRemoval(id: string, at: number, stops: (agents: string[]) => CloneCommand[]): { send: CloneCommand[]; finished: ValidationRecord | null } {
    return this.transaction(() => {
      const v = this.get(id);
      if (v.status !== 'removing' || this.pendingCommands(id) > 0) return { send: [], finished: null };
      const rows = prepared(this.db, 'SELECT agent_id, kind, result FROM outbox WHERE release_id = ? ORDER BY agent_id').all(id) as Row[];
      const quiesced = rows.filter((r) => r.kind === 'Quiesce').map((r) => r.agent_id as string);
      if (quiesced.length > 0 && !rows.some((r) => r.kind === 'StopApp')) {
        const send = stops(quiesced);
        this.enqueue(id, send, at);
        return { send, finished: null };
      }
      const failed = rows.filter((r) => r.kind === 'StopApp' && !(JSON.parse(r.result ?? '{}') as { ok?: boolean }).ok).map((r) => r.agent_id as string);
      const message = failed.length ? `clone removed; stopping the app failed on ${failed.join(' ')}` : 'clone removed: its app stopped on every instance';
      const finished = this.move(id, v.outcome === 'done' ? 'done' : 'cancelled', message, { atUnixMs: at, actor: 'controller', comment: '' });
      return { send: [], finished };
    });
  }
}
