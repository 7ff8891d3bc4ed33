// The controller's SQLite store: every read and write as a named atomic operation in domain words.
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { AlreadyExistsError } from './errors.js';
import { ListQueries } from './lists.js';
import { RoutingQueries } from './routing.js';
import { ValidationQueries } from './validations.js';
import { AgentUpgradeQueries } from './agent-upgrades.js';
import { NotificationQueries } from './notifications.js';
import { migrate } from './schema.js';
import { isFinalRelease } from '../domain/transitions.js';
import { LiveReleases } from './live.js';
import type { NewReleaseInput, PendingCommand, ReleaseStore } from '../domain/ports.js';
import { ACTIVE_RELEASE_WHERE, getReleaseRow, insertChange, insertRelease, persistOutput, prepared } from './releases.js';
import { insertSql, toAgent, toApp, toChange, toEdition, toInstance, toBatch, toRelease, toReleaseInstance, toStep } from './rows.js';
import type {
  AgentRecord,
  AgentStatus,
  AppRecord,
  ChangeRecordRow,
  CommandOutcome,
  EditionRecord,
  InstanceRecord,
  ReconcileOutput,
  ReleaseDetailRecord,
  ReleaseRecord,
  ReleaseSnapshot,
} from '../domain/records.js';

export { AlreadyExistsError };

export interface AgentHello {
  agentId: string;
  host: string;
  group: string;
  labels: Record<string, string>;
  bootId: string;
  version: string;
  /** The agent's event signing key (SPKI DER, base64); '' when it sent none. */
  eventKey?: string;
  /** Where routers reach its gates: its --advertise address, else its session's peer IP ('' unknown). */
  address?: string;
  instances: Array<{ app: string; servicePort: number; activeEdition: string; keptEditions: string[]; processState: string; quiesced: boolean }>;
}

/**
 * An agent's report of an app's instance (a command's result, or the answer to an un-quiesce). `updated_unix_ms` is
 * the controller's clock, never the agent's: the routing hub reads the rows changed since its last poll by it.
 */
const INSTANCE_REPORT_SQL =
  'UPDATE instances SET active_edition = ?, kept_editions = ?, process_state = ?, quiesced = ?, updated_unix_ms = ? WHERE app = ? AND agent_id = ?';

export class Store implements ReleaseStore {
  readonly db: Database.Database;
  /** Active releases held in memory between passes. */
  private readonly live: LiveReleases;
  /** agentEventKey answers from here (see there). */
  private readonly eventKeys = new Map<string, string>();

  private constructor(db: Database.Database) {
    this.db = db;
    this.live = new LiveReleases(db);
  }

  /** Told after a commit that removed an app's instance (its agent no longer reports the app). */
  private readonly removalListeners: Array<(app: string, agentId: string) => void> = [];

  private listQueries?: ListQueries;
  /** The paged, filtered listings (agent list, instance list, release show), their statements prepared once. */
  get lists(): ListQueries {
    this.listQueries ??= new ListQueries(this.db);
    return this.listQueries;
  }

  private routingQueries?: RoutingQueries;
  /** Routing rules and what the routers need of an app (controller/store/routing.ts). */
  get routing(): RoutingQueries {
    this.routingQueries ??= new RoutingQueries(this.db);
    return this.routingQueries;
  }

  private validationQueries?: ValidationQueries;
  /** Validation clones and their lifecycle (controller/store/validations.ts). */
  get validations(): ValidationQueries {
    this.validationQueries ??= new ValidationQueries(this.db, this.routing);
    return this.validationQueries;
  }

  private agentUpgradeQueries?: AgentUpgradeQueries;
  /** Agent self-upgrades and their targets (controller/store/agent-upgrades.ts). */
  get agentUpgrades(): AgentUpgradeQueries {
    this.agentUpgradeQueries ??= new AgentUpgradeQueries(this.db);
    return this.agentUpgradeQueries;
  }

  private notificationQueries?: NotificationQueries;
  /** Webhook notifiers and their deliveries (controller/store/notifications.ts). */
  get notifications(): NotificationQueries {
    this.notificationQueries ??= new NotificationQueries(this.db);
    return this.notificationQueries;
  }

  /** Calls `listener(app, agentId)` after every committed removal of an instance; returns the unsubscribe function. */
  onInstanceRemoved(listener: (app: string, agentId: string) => void): () => void {
    this.removalListeners.push(listener);
    return () => {
      const at = this.removalListeners.indexOf(listener);
      if (at >= 0) this.removalListeners.splice(at, 1);
    };
  }

  /** Opens (creating if needed) the database file and applies pending migrations. */
  static open(path: string, now = Date.now()): Store {
    ownerOnly(path);
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db, now);
    return new Store(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Runs `fn` in a transaction that is always rolled back, and returns what it returned: a dry run goes through every
   * check and write a real one would, and leaves nothing behind.
   */
  rehearse<T>(fn: () => T): T {
    const rollBack = new Error('rehearsal: rolled back');
    let result: { value: T } | undefined;
    try {
      this.transaction(() => {
        result = { value: fn() };
        throw rollBack;
      });
    } catch (err) {
      if (err !== rollBack) throw err;
    }
    return result!.value;
  }

  /** Runs `fn` in a transaction, or as part of the one under way (no savepoint: a throw aborts that one too). */
  private atomically<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.transaction(fn);
  }

  // ── apps and editions ────────────────────────────────────────────────────

  createApp(app: AppRecord): AppRecord {
    return this.transaction(() => {
      if (prepared(this.db, 'SELECT 1 FROM apps WHERE name = ?').get(app.name)) throw new AlreadyExistsError(`app '${app.name}' already exists`);
      prepared(this.db, 
          'INSERT INTO apps (name, start_command, env, port_env, health_path, stop_timeout_ms, created_unix_ms, drain_mode, quiesce_hook, inflight_path, update_order, start_grace_ms, health_initial_interval_ms, hold_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(app.name, JSON.stringify(app.startCommand), JSON.stringify(app.env), app.portEnv, app.healthPath, app.stopTimeoutMs, app.createdUnixMs, app.drainMode ?? 'gate', app.quiesceHook ?? '', app.inflightPath ?? '', app.updateOrder ?? 'stop-first', app.startGraceMs ?? 0, app.healthInitialIntervalMs ?? 0, app.holdMs ?? 0);
      return app;
    });
  }

  /**
   * Replaces an app's definition (its creation time kept) with a change record; refused while a release of the app is
   * active, so all of its batches get one definition.
   */
  updateApp(app: AppRecord, change: { atUnixMs: number; actor: string; result: string }): AppRecord {
    return this.transaction(() => {
      const before = this.getApp(app.name);
      const active = prepared(this.db, `SELECT id FROM releases WHERE app = ? AND ${ACTIVE_RELEASE_WHERE} ORDER BY seq LIMIT 1`).pluck().get(app.name) as string | undefined;
      if (active) throw new ConflictError(`app '${app.name}': release ${active} is still active; finish or cancel it before changing the app`);
      const updated = { ...app, createdUnixMs: before.createdUnixMs };
      prepared(this.db,
          'UPDATE apps SET start_command = ?, env = ?, port_env = ?, health_path = ?, stop_timeout_ms = ?, drain_mode = ?, quiesce_hook = ?, inflight_path = ?, update_order = ?, start_grace_ms = ?, health_initial_interval_ms = ?, hold_ms = ? WHERE name = ?',
        )
        .run(JSON.stringify(updated.startCommand), JSON.stringify(updated.env), updated.portEnv, updated.healthPath, updated.stopTimeoutMs, updated.drainMode ?? 'gate', updated.quiesceHook ?? '', updated.inflightPath ?? '', updated.updateOrder ?? 'stop-first', updated.startGraceMs ?? 0, updated.healthInitialIntervalMs ?? 0, updated.holdMs ?? 0, updated.name);
      insertChange(this.db, { atUnixMs: change.atUnixMs, actor: change.actor, action: 'app-update', app: app.name, releaseId: '', comment: '', result: change.result });
      return updated;
    });
  }

  getApp(name: string): AppRecord {
    const row = prepared(this.db, 'SELECT * FROM apps WHERE name = ?').get(name);
    if (!row) throw new NotFoundError(`app '${name}' does not exist`);
    return toApp(row as any);
  }

  hasApp(name: string): boolean {
    return prepared(this.db, 'SELECT 1 FROM apps WHERE name = ?').get(name) !== undefined;
  }

  listApps(): AppRecord[] {
    return (prepared(this.db, 'SELECT * FROM apps ORDER BY name').all() as any[]).map(toApp);
  }

  installEdition(edition: EditionRecord): EditionRecord {
    return this.transaction(() => {
      this.getApp(edition.app);
      if (prepared(this.db, 'SELECT 1 FROM editions WHERE app = ? AND name = ?').get(edition.app, edition.name)) {
        throw new AlreadyExistsError(`edition '${edition.name}' of app '${edition.app}' already exists`);
      }
      const row = {
        app: edition.app,
        name: edition.name,
        description: edition.description,
        url: edition.url,
        sha256: edition.sha256,
        size: edition.size,
        format: edition.format,
        file_name: edition.fileName,
        created_unix_ms: edition.createdUnixMs,
      };
      prepared(this.db, insertSql('editions', row)).run(row);
      // Releases in memory list the app's editions (a rollback may download an old one): they read them again.
      this.live.drop();
      return edition;
    });
  }

  listEditions(app: string): EditionRecord[] {
    this.getApp(app);
    return (prepared(this.db, 'SELECT * FROM editions WHERE app = ? ORDER BY created_unix_ms, name').all(app) as any[]).map(toEdition);
  }

  // ── agents and instances ─────────────────────────────────────────────────

  /** Upserts the agent and the instances it reports, marks it connected; returns its previous status. */
  markAgentConnected(hello: AgentHello, now: number): AgentStatus | null {
    this.eventKeys.delete(hello.agentId);
    let removed: string[] = [];
    const before = this.transaction(() => {
      const previous = prepared(this.db, 'SELECT status FROM agents WHERE id = ?').pluck().get(hello.agentId) as AgentStatus | undefined;
      prepared(this.db, 
          `INSERT INTO agents (id, host, grp, labels, status, last_seen_unix_ms, connected_unix_ms, boot_id, version, event_key, address)
           VALUES (@id, @host, @grp, @labels, 'connected', @now, @now, @boot_id, @version, @event_key, @address)
           ON CONFLICT (id) DO UPDATE SET host = @host, grp = @grp, labels = @labels, status = 'connected',
             last_seen_unix_ms = @now, connected_unix_ms = @now, boot_id = @boot_id, version = @version, event_key = @event_key, address = @address`,
        )
        .run({
          id: hello.agentId, host: hello.host, grp: hello.group, labels: JSON.stringify(hello.labels), now, boot_id: hello.bootId, version: hello.version,
          event_key: hello.eventKey ?? '', address: hello.address ?? '',
        });
      const upsert = prepared(this.db, 
        `INSERT INTO instances (app, agent_id, grp, service_port, active_edition, kept_editions, process_state, quiesced, updated_unix_ms)
         VALUES (@app, @agent_id, @grp, @service_port, @active_edition, @kept_editions, @process_state, @quiesced, @now)
         ON CONFLICT (app, agent_id) DO UPDATE SET grp = @grp, service_port = @service_port, active_edition = @active_edition,
           kept_editions = @kept_editions, process_state = @process_state, quiesced = @quiesced, updated_unix_ms = @now`,
      );
      for (const report of hello.instances) {
        upsert.run({
          app: report.app,
          agent_id: hello.agentId,
          grp: hello.group,
          service_port: report.servicePort,
          active_edition: report.activeEdition,
          kept_editions: JSON.stringify(report.keptEditions),
          process_state: report.processState,
          quiesced: report.quiesced ? 1 : 0,
          now,
        });
      }
      // The agent no longer serves the apps it did not report.
      const apps = hello.instances.map((i) => i.app);
      removed = prepared(this.db, `DELETE FROM instances WHERE agent_id = ? AND app NOT IN (SELECT value FROM json_each(?)) RETURNING app`)
        .pluck()
        .all(hello.agentId, JSON.stringify(apps)) as string[];
      this.live.noteAgent(hello.agentId);
      return previous ?? null;
    });
    for (const app of removed) for (const listener of [...this.removalListeners]) listener(app, hello.agentId);
    return before;
  }

  /**
   * The agent's event key (base64 SPKI DER, '' when none); undefined when no such agent ever said hello. Read per
   * event, so kept in memory: only markAgentConnected and clearAgentEventKey write it, and both forget the entry.
   */
  agentEventKey(agentId: string): string | undefined {
    if (this.eventKeys.has(agentId)) return this.eventKeys.get(agentId);
    const key = prepared(this.db, 'SELECT event_key FROM agents WHERE id = ?').pluck().get(agentId) as string | undefined;
    // Never cached from inside a transaction, which may still roll back; an agent not yet known is not cached either.
    if (key !== undefined && !this.db.inTransaction) this.eventKeys.set(agentId, key);
    return key;
  }

  /** Forgets the agent's event key (revocation): its events are refused from now on. True when it had one. */
  clearAgentEventKey(agentId: string): boolean {
    this.eventKeys.delete(agentId);
    try {
      return this.transaction(() => prepared(this.db, `UPDATE agents SET event_key = '' WHERE id = ? AND event_key != ''`).run(agentId).changes > 0);
    } finally {
      this.eventKeys.delete(agentId);
    }
  }

  /** Marks the agent unreachable; returns false when it already was (nothing written). */
  markAgentUnreachable(agentId: string, lastSeenUnixMs: number): boolean {
    return this.transaction(() => {
      const info = prepared(this.db, `UPDATE agents SET status = 'unreachable', last_seen_unix_ms = ? WHERE id = ? AND status != 'unreachable'`)
        .run(lastSeenUnixMs, agentId);
      if (info.changes > 0) this.live.noteAgent(agentId);
      return info.changes > 0;
    });
  }

  /** Apps the agent serves (its instances), as it last reported them. */
  appsOfAgent(agentId: string): string[] {
    return prepared(this.db, 'SELECT app FROM instances WHERE agent_id = ? ORDER BY app').pluck().all(agentId) as string[];
  }

  /** At start-up no stream is open yet: every agent is unreachable until it says hello again. */
  markAllAgentsUnreachable(): number {
    this.live.drop();
    return this.transaction(() => prepared(this.db, `UPDATE agents SET status = 'unreachable' WHERE status != 'unreachable'`).run().changes);
  }

  listAgents(): AgentRecord[] {
    return (prepared(this.db, 'SELECT * FROM agents ORDER BY id').all() as any[]).map(toAgent);
  }

  /** Instances of an app (all apps when empty), with their agent's status. */
  listInstances(app: string): Array<InstanceRecord & { agentStatus: AgentStatus }> {
    if (app) this.getApp(app);
    const rows = prepared(this.db, 
        `SELECT i.*, a.status AS agent_status FROM instances i JOIN agents a ON a.id = i.agent_id
         WHERE (? = '' OR i.app = ?) ORDER BY i.app, i.grp, i.agent_id`,
      )
      .all(app, app) as any[];
    return rows.map((r) => ({ ...toInstance(r), agentStatus: r.agent_status }));
  }

  // ── releases ─────────────────────────────────────────────────────────────

  /** Validates, plans and inserts a release in one transaction, so racing creates cannot both pass the active-release check. */
  createRelease(input: NewReleaseInput): ReleaseRecord {
    return this.transaction(() => {
      const release = insertRelease(this.db, input);
      insertChange(this.db, {
        atUnixMs: input.now,
        actor: input.actor,
        action: 'create',
        app: release.app,
        releaseId: release.id,
        comment: '',
        result: `created: edition ${release.edition} to group ${release.group} in ${release.batchCount} batch(es)`,
      });
      return release;
    });
  }

  getRelease(id: string): ReleaseRecord {
    return getReleaseRow(this.db, id);
  }

  listReleases(app: string): ReleaseRecord[] {
    if (app) this.getApp(app);
    return (prepared(this.db, `SELECT * FROM releases WHERE (? = '' OR app = ?) ORDER BY seq DESC`).all(app, app) as any[]).map(toRelease);
  }

  /** Active releases of the app whose `waiting_for` starts with `prefix`, oldest first. */
  releasesWaitingFor(app: string, prefix: string): string[] {
    return prepared(this.db, `SELECT id FROM releases WHERE app = ? AND ${ACTIVE_RELEASE_WHERE} AND substr(waiting_for, 1, length(?)) = ? ORDER BY seq`)
      .pluck()
      .all(app, prefix, prefix) as string[];
  }

  /** Ids of releases that are not in a final status, oldest first. */
  activeReleaseIds(): string[] {
    return prepared(this.db, `SELECT id FROM releases WHERE ${ACTIVE_RELEASE_WHERE} ORDER BY seq`).pluck().all() as string[];
  }

  countReleasesByStatus(): Array<{ status: string; count: number }> {
    return prepared(this.db, 'SELECT status, count(*) AS count FROM releases GROUP BY status').all() as Array<{ status: string; count: number }>;
  }

  /** A batch's start and end (0 while not started / not ended), for the batch duration histogram. */
  batchTimes(releaseId: string, batch: number): { startedUnixMs: number; finishedUnixMs: number } | undefined {
    const row = prepared(this.db, 'SELECT started_unix_ms, finished_unix_ms FROM batches WHERE release_id = ? AND number = ?').get(releaseId, batch) as
      | { started_unix_ms: number; finished_unix_ms: number }
      | undefined;
    return row && { startedUnixMs: row.started_unix_ms, finishedUnixMs: row.finished_unix_ms };
  }

  /** Agents by status (connected, unreachable, ...), for the scrape-time gauge. */
  countAgentsByStatus(): Array<{ status: string; count: number }> {
    return prepared(this.db, 'SELECT status, count(*) AS count FROM agents GROUP BY status').all() as Array<{ status: string; count: number }>;
  }

  getReleaseDetail(id: string): ReleaseDetailRecord {
    return this.transaction(() => {
      const release = getReleaseRow(this.db, id);
      const batches = (prepared(this.db, 'SELECT * FROM batches WHERE release_id = ? ORDER BY number').all(id) as any[]).map(toBatch);
      const instances = (prepared(this.db, 'SELECT * FROM release_instances WHERE release_id = ? ORDER BY batch, instance').all(id) as any[]).map(
        toReleaseInstance,
      );
      const steps = (prepared(this.db, 'SELECT * FROM steps WHERE release_id = ? ORDER BY id').all(id) as any[]).map(toStep);
      const changes = (prepared(this.db, 'SELECT * FROM change_records WHERE release_id = ? ORDER BY id').all(id) as any[]).map(toChange);
      const editions: Record<string, string> = {};
      for (const row of prepared(this.db, 'SELECT agent_id, active_edition FROM instances WHERE app = ?')
        .all(release.app) as Array<{ agent_id: string; active_edition: string }>) {
        editions[row.agent_id] = row.active_edition;
      }
      return { release, batches, instances, steps, changes, editions };
    });
  }

  /**
   * One reconcile pass: loads the release, lets `decide` change the snapshot, and writes the changed rows
   * together with the commands (outbox), step rows and change records it returns, all in one transaction.
   */
  reconcileRelease<T extends ReconcileOutput>(id: string, decide: (snapshot: ReleaseSnapshot) => T): { snapshot: ReleaseSnapshot; output: T } {
    try {
      const result = this.transaction(() => {
        const result = this.live.reconcile(id, decide);
        persistOutput(this.db, result.snapshot.release, result.output);
        return result;
      });
      if (isFinalRelease(result.snapshot.release.status)) this.live.drop(id);
      return result;
    } catch (err) {
      // Rolled back: the snapshot in memory may hold what SQLite does not.
      this.live.drop(id);
      throw err;
    }
  }

  /**
   * Runs `fn` in one transaction, for inputs handled together (results that arrived in one turn): their passes commit
   * at once. If it fails, every release in memory is read again from SQLite on its next pass.
   */
  batch<T>(fn: () => T): T {
    try {
      return this.transaction(fn);
    } catch (err) {
      this.live.drop();
      throw err;
    }
  }

  // ── outbox ───────────────────────────────────────────────────────────────

  /** A command result's report of the app's instance, in SQLite and in the live releases. */
  private recordReport(app: string, agentId: string, outcome: CommandOutcome): void {
    const at = Date.now();
    if (outcome.instance) {
      const i = outcome.instance;
      prepared(this.db, INSTANCE_REPORT_SQL).run(i.activeEdition, JSON.stringify(i.keptEditions), i.processState, i.quiesced ? 1 : 0, at, app, agentId);
      this.live.noteReport(app, agentId, { ...i, updatedUnixMs: at });
    } else if (outcome.activeEdition) {
      prepared(this.db, 'UPDATE instances SET active_edition = ?, updated_unix_ms = ? WHERE app = ? AND agent_id = ?').run(outcome.activeEdition, at, app, agentId);
      this.live.noteReport(app, agentId, { activeEdition: outcome.activeEdition, updatedUnixMs: at });
    }
  }

  /** Records a command's result; returns its release, or null when the id is unknown or already done. */
  recordCommandResult(
    agentId: string,
    commandId: string,
    outcome: CommandOutcome,
  ): { releaseId: string; instance: string; kind: string } | null {
    return this.atomically(() => {
      const row = prepared(
        this.db,
        // A command's owner is a release, or a validation (its clone's StopApp commands).
        `SELECT o.agent_id, o.release_id, o.instance, o.kind, o.done, coalesce(r.app, v.app) AS app FROM outbox o
         LEFT JOIN releases r ON r.id = o.release_id LEFT JOIN validations v ON v.id = o.release_id WHERE o.command_id = ?`,
      ).get(commandId) as any;
      if (!row || row.agent_id !== agentId || row.app === null) return null;
      // Most results report the instance as it was (a download, a quiesce): its row stands, its time included.
      if (!(outcome.instance && this.live.holdsReport(row.app, agentId, outcome.instance))) this.recordReport(row.app, agentId, outcome);
      if (row.done === 1) return null;
      prepared(this.db, 'UPDATE outbox SET done = 1, result = ? WHERE command_id = ?').run(JSON.stringify(outcome), commandId);
      this.live.noteOutcome(row.release_id, commandId, outcome);
      return { releaseId: row.release_id, instance: row.instance, kind: row.kind };
    });
  }

  /**
   * True when an active release will still act on this instance (it is pending or in progress, or the release is
   * rolling back): that release checks its health itself, so the controller must not let it in early.
   */
  releaseWillAct(app: string, instance: string): boolean {
    return (
      prepared(this.db, 
          `SELECT 1 FROM release_instances ri JOIN releases r ON r.id = ri.release_id
           WHERE r.app = ? AND ri.instance = ? AND r.${ACTIVE_RELEASE_WHERE}
             AND (ri.status IN ('pending', 'in progress') OR r.status = 'Rolling back') LIMIT 1`,
        )
        .get(app, instance) !== undefined
    );
  }

  /** What an agent said of an instance outside a release command (the answer to an un-quiesce). */
  updateInstanceReport(app: string, agentId: string, report: { activeEdition: string; keptEditions: string[]; processState: string; quiesced: boolean }, now: number): void {
    prepared(this.db, INSTANCE_REPORT_SQL)
      .run(report.activeEdition, JSON.stringify(report.keptEditions), report.processState, report.quiesced ? 1 : 0, now, app, agentId);
    this.live.noteAgent(agentId);
  }

  /** True when the agent has a command of `kind` (e.g. 'HardResetServer') without a result. */
  hasPendingCommand(agentId: string, kind: string): boolean {
    return prepared(this.db, 'SELECT 1 FROM outbox WHERE agent_id = ? AND done = 0 AND kind = ? LIMIT 1').get(agentId, kind) !== undefined;
  }

  /** Commands of the agent without a result yet, oldest first: re-sent on every hello. */
  pendingCommandsForAgent(agentId: string): PendingCommand[] {
    const rows = prepared(this.db, 'SELECT command_id, agent_id, payload FROM outbox WHERE agent_id = ? AND done = 0 ORDER BY created_unix_ms, rowid')
      .all(agentId) as Array<{ command_id: string; agent_id: string; payload: Buffer }>;
    return rows.map((r) => ({ commandId: r.command_id, agentId: r.agent_id, payload: new Uint8Array(r.payload) }));
  }

  countOutbox(): { pending: number; done: number } {
    const row = prepared(this.db, 'SELECT sum(done = 0) AS pending, sum(done = 1) AS done FROM outbox').get() as any;
    return { pending: row.pending ?? 0, done: row.done ?? 0 };
  }

  // ── drain and deadlines ──────────────────────────────────────────────────

  /** Records a `drained` event for the instance's active release if it is quiescing or draining; returns the release id. */
  recordDrained(app: string, instance: string, quiesceCommandId = ''): string | null {
    return this.atomically(() => {
      const row = prepared(
        this.db,
        `SELECT ri.release_id FROM release_instances ri JOIN releases r ON r.id = ri.release_id
         WHERE r.app = ? AND ri.instance = ? AND r.${ACTIVE_RELEASE_WHERE}
           AND ri.step IN ('quiesce', 'drain') AND ri.step_state = 'running' AND ri.drained = 0`,
      ).get(app, instance) as { release_id: string } | undefined;
      if (!row) return null;
      // A late `drained` (redelivered from the ingest queue after a controller restart) of an earlier Quiesce must
      // not end this drain: only the newest Quiesce of this instance in this release counts. Older agents send no id.
      if (quiesceCommandId) {
        const latest = prepared(this.db, `SELECT command_id FROM outbox WHERE release_id = ? AND instance = ? AND kind = 'Quiesce' ORDER BY created_unix_ms DESC, rowid DESC LIMIT 1`)
          .pluck()
          .get(row.release_id, instance) as string | undefined;
        if (latest !== quiesceCommandId) return null;
      }
      prepared(this.db, 'UPDATE release_instances SET drained = 1 WHERE release_id = ? AND instance = ?').run(row.release_id, instance);
      this.live.noteDrained(row.release_id, instance);
      return row.release_id;
    });
  }

  /** The earliest deadline (step or batch wait) of an active release, or null. */
  nextDeadline(): number | null {
    const row = prepared(this.db, 
        `SELECT min(at) FROM (
           SELECT min(ri.deadline_unix_ms) AS at FROM release_instances ri JOIN releases r ON r.id = ri.release_id
             WHERE ri.deadline_unix_ms IS NOT NULL AND r.${ACTIVE_RELEASE_WHERE}
           UNION ALL
           SELECT min(next_batch_at) FROM releases WHERE next_batch_at IS NOT NULL AND status = 'Releasing')`,
      )
      .pluck()
      .get() as number | null;
    return row ?? null;
  }

  /** Active releases with a deadline at or before `now`. */
  releasesDue(now: number): string[] {
    return prepared(this.db, 
        `SELECT DISTINCT r.id FROM releases r LEFT JOIN release_instances ri ON ri.release_id = r.id
         WHERE r.${ACTIVE_RELEASE_WHERE} AND (ri.deadline_unix_ms <= @now OR (r.status = 'Releasing' AND r.next_batch_at <= @now))
         ORDER BY r.seq`,
      )
      .pluck()
      .all({ now }) as string[];
  }

  // ── history ──────────────────────────────────────────────────────────────

  recordChange(change: ChangeRecordRow): void {
    this.transaction(() => insertChange(this.db, change));
  }

  history(app: string): ChangeRecordRow[] {
    if (app) this.getApp(app);
    return (prepared(this.db, `SELECT * FROM change_records WHERE (? = '' OR app = ?) ORDER BY id`).all(app, app) as any[]).map(toChange);
  }
}

/**
 * The database holds token and credential hashes and the fleet's layout: owner-only. It is created 0600 before
 * SQLite opens it (SQLite gives -wal and -shm the database file's mode), and older, wider files are narrowed.
 */
function ownerOnly(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}
