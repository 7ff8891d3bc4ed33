// Release operations of the store: create (with the one-active-release check), snapshot, persist a reconcile pass.
import type { Database } from 'better-sqlite3';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { FINAL_RELEASE_STATUSES } from '../domain/transitions.js';
import type { NewReleaseInput } from '../domain/ports.js';
import type { PlannedBatch } from '../domain/planner.js';
import { editionsLeftNowhere, takesDefault } from '../domain/routing.js';
import type { CompiledSpec } from '../domain/spec.js';
import { currentDefaults, routesOf } from './routing.js';
import { insertChange, prepared } from './statements.js';
import {
  batchParams,
  insertSql,
  releaseInstanceParams,
  releaseParams,
  toApp,
  toBatch,
  toEdition,
  toInstance,
  toRelease,
  toReleaseInstance,
  updateSql,
} from './rows.js';
import type {
  BatchRecord,
  ChangeRecordRow,
  CommandOutcome,
  InstanceRecord,
  ReconcileOutput,
  ReleaseInstanceRecord,
  ReleaseRecord,
  ReleaseSnapshot,
} from '../domain/records.js';

const FINAL_SQL = FINAL_RELEASE_STATUSES.map((s) => `'${s}'`).join(', ');
export const ACTIVE_RELEASE_WHERE = `status NOT IN (${FINAL_SQL})`;

/** Two group selections overlap when equal or when either is "all". */
function groupsOverlap(a: string, b: string): boolean {
  return a === b || a === 'all' || b === 'all';
}

export function insertRelease(db: Database, input: NewReleaseInput): ReleaseRecord {
  const { spec, now } = input;
  const appRow = db.prepare('SELECT * FROM apps WHERE name = ?').get(spec.app);
  if (!appRow) throw new NotFoundError(`app '${spec.app}' does not exist`);
  const editionRow = db.prepare('SELECT * FROM editions WHERE app = ? AND name = ?').get(spec.app, spec.edition);
  if (!editionRow) throw new NotFoundError(`edition '${spec.edition}' of app '${spec.app}' does not exist`);
  const instances = (db.prepare('SELECT * FROM instances WHERE app = ? ORDER BY agent_id').all(spec.app) as any[]).map(toInstance);
  // Planning first: a spec that does not fit (bad group, too many batches) is bad input whatever else is active.
  const batches = input.plan({ app: toApp(appRow as any), edition: toEdition(editionRow as any), instances });
  const active = db.prepare(`SELECT id, grp FROM releases WHERE app = ? AND ${ACTIVE_RELEASE_WHERE}`).all(spec.app) as Array<{ id: string; grp: string }>;
  const clash = active.find((r) => groupsOverlap(r.grp, spec.group));
  if (clash) {
    throw new ConflictError(`release ${clash.id} of app '${spec.app}' is still active for group '${clash.grp}'; finish or cancel it first`);
  }
  const routing = routingAtCreate(db, spec, instances, batches);
  // --force is a decision of this create, not part of the release: a back-out copying this spec must not inherit it.
  const { force: _force, ...kept } = spec;
  const release: ReleaseRecord = {
    id: input.id,
    app: spec.app,
    edition: spec.edition,
    group: spec.group,
    status: 'To release',
    message: '',
    spec: kept,
    createdUnixMs: now,
    updatedUnixMs: now,
    finishedUnixMs: 0,
    createdBy: input.actor,
    batchCount: batches.length,
    currentBatch: 0,
    waitingFor: 'start',
    nextBatchAt: null,
    stopReason: null,
    revert: false,
    rollbackBatches: 0,
    rollbackCurrent: 0,
    ...routing,
    routePhase: '',
  };
  const releaseRow = releaseParams(release);
  db.prepare(insertSql('releases', releaseRow)).run(releaseRow);
  // An atomic half may span groups (its batch names the target): each instance keeps its own group.
  const groupOf = new Map(instances.map((i) => [i.agentId, i.group]));
  for (const planned of batches) {
    const batch: BatchRecord = {
      releaseId: release.id,
      number: planned.number,
      group: planned.group,
      status: 'pending',
      instances: planned.instances,
      startedUnixMs: 0,
      finishedUnixMs: 0,
      checkpoint: '',
      checkpointBy: '',
      checkpointComment: '',
      cleared: false,
    };
    const row = batchParams(batch);
    db.prepare(insertSql('batches', row)).run(row);
    for (const id of planned.instances) {
      const row = releaseInstanceParams(newReleaseInstance(release.id, id, groupOf.get(id) ?? planned.group, planned.number));
      db.prepare(insertSql('release_instances', row)).run(row);
    }
  }
  return release;
}

/**
 * What the release does to the routers, decided at create: whether it moves the app's default editions (and from
 * which), and, unless --force, a refusal when it would leave an edition that routing rules name active nowhere.
 */
function routingAtCreate(db: Database, spec: CompiledSpec, instances: InstanceRecord[], batches: PlannedBatch[]): Pick<ReleaseRecord, 'takesDefault' | 'fromDefault'> {
  const target = new Set(batches.flatMap((b) => b.instances));
  if (!spec.force) {
    const left = editionsLeftNowhere(routesOf(db, spec.app).map((r) => r.edition), instances, target, spec.edition);
    if (left.length > 0) {
      const names = left.join(', ');
      throw new ConflictError(
        `this release would leave edition${left.length > 1 ? 's' : ''} ${names} of ${spec.app} active nowhere while routing rules name ${left.length > 1 ? 'them' : 'it'} (fleetwave route list ${spec.app}); remove those rules first, or give --force and they fall back to the default edition`,
      );
    }
  }
  const fromDefault = currentDefaults(db, spec.app, () => instances.map((i) => i.activeEdition));
  return { takesDefault: takesDefault(fromDefault, instances, target), fromDefault };
}

function newReleaseInstance(releaseId: string, instance: string, group: string, batch: number): ReleaseInstanceRecord {
  return {
    releaseId,
    instance,
    group,
    batch,
    status: 'pending',
    step: '',
    stepState: '',
    stepStartedUnixMs: 0,
    phase: '',
    commandId: null,
    deadlineUnixMs: null,
    drained: false,
    downloaded: false,
    moved: 'none',
    error: '',
    fromEdition: null,
    rollbackBatch: 0,
    updateOrder: '',
  };
}

export function getReleaseRow(db: Database, id: string): ReleaseRecord {
  const row = db.prepare('SELECT * FROM releases WHERE id = ?').get(id);
  if (!row) throw new NotFoundError(`release '${id}' does not exist`);
  return toRelease(row as any);
}

export function loadSnapshot(db: Database, id: string): ReleaseSnapshot {
  const release = getReleaseRow(db, id);
  const batches = (db.prepare('SELECT * FROM batches WHERE release_id = ? ORDER BY number').all(id) as any[]).map(toBatch);
  const instances = (db.prepare('SELECT * FROM release_instances WHERE release_id = ? ORDER BY batch, instance').all(id) as any[]).map(
    toReleaseInstance,
  );
  const app = toApp(db.prepare('SELECT * FROM apps WHERE name = ?').get(release.app) as any);
  const editions: ReleaseSnapshot['editions'] = {};
  for (const row of db.prepare('SELECT * FROM editions WHERE app = ?').all(release.app) as any[]) editions[row.name] = toEdition(row);
  const edition = editions[release.edition]!;
  const hosts: ReleaseSnapshot['hosts'] = {};
  const agentStatus: ReleaseSnapshot['agentStatus'] = {};
  for (const row of db
    .prepare(
      `SELECT i.*, a.status AS agent_status FROM instances i JOIN agents a ON a.id = i.agent_id
       WHERE i.app = ? AND i.agent_id IN (SELECT instance FROM release_instances WHERE release_id = ?)`,
    )
    .all(release.app, id) as any[]) {
    hosts[row.agent_id] = toInstance(row);
    agentStatus[row.agent_id] = row.agent_status;
  }
  const outcomes: ReleaseSnapshot['outcomes'] = {};
  // One query for the results of every instance's current command, not one per instance.
  const results = db
    .prepare(
      `SELECT o.command_id, o.result FROM outbox o JOIN release_instances ri ON ri.command_id = o.command_id
       WHERE ri.release_id = ? AND o.result IS NOT NULL`,
    )
    .all(id) as Array<{ command_id: string; result: string }>;
  for (const row of results) outcomes[row.command_id] = JSON.parse(row.result) as CommandOutcome;
  return { release, batches, instances, app, edition, hosts, agentStatus, outcomes, editions, elsewhere: outOfServiceElsewhere(db, release) };
}

/**
 * Instances of the app that the app's other active releases hold out of service: moved off their old
 * edition and not (yet) released, or being rolled back. `busy`: those of them with a step under way.
 */
export function outOfServiceElsewhere(db: Database, release: ReleaseRecord): { outOfService: number; busy: number } {
  const row = db
    .prepare(
      `SELECT count(*) AS out, sum(ri.step_state = 'running') AS busy FROM release_instances ri JOIN releases r ON r.id = ri.release_id
       WHERE r.app = ? AND r.id != ? AND r.${ACTIVE_RELEASE_WHERE} AND ri.moved != 'none'
         AND (ri.status != 'released' OR ri.phase = 'rollback')`,
    )
    .get(release.app, release.id) as { out: number; busy: number | null };
  return { outOfService: row.out, busy: row.busy ?? 0 };
}

/** Writes a pass's commands (outbox), abandoned commands, step rows and change records; its rows are written by LiveReleases. */
export function persistOutput(db: Database, release: ReleaseRecord, out: ReconcileOutput): void {
  const insertCommand = prepared(
    db,
    `INSERT INTO outbox (command_id, agent_id, release_id, instance, kind, payload, created_unix_ms, result, done)
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)`,
  );
  for (const c of out.commands) insertCommand.run(c.commandId, c.agentId, c.releaseId, c.instance, c.kind, Buffer.from(c.payload), c.createdUnixMs);
  for (const a of out.abandoned) {
    const outcome: CommandOutcome = { ok: false, error: a.reason, finishedUnixMs: release.updatedUnixMs, activeEdition: '', abandoned: true };
    prepared(db, 'UPDATE outbox SET done = 1, result = ? WHERE command_id = ? AND done = 0').run(JSON.stringify(outcome), a.commandId);
  }
  const startStep = prepared(
    db,
    `INSERT INTO steps (release_id, instance, step, phase, status, started_unix_ms, finished_unix_ms, error) VALUES (?, ?, ?, ?, 'running', ?, 0, '')`,
  );
  const endStep = prepared(
    db,
    `UPDATE steps SET status = ?, finished_unix_ms = ?, error = ? WHERE id = (
       SELECT max(id) FROM steps WHERE release_id = ? AND instance = ? AND step = ? AND status = 'running')`,
  );
  for (const s of out.steps) {
    if (s.op === 'start') startStep.run(release.id, s.instance, s.step, s.phase, s.at);
    else endStep.run(s.status, s.at, s.error, release.id, s.instance, s.step);
  }
  for (const change of out.changes) insertChange(db, change);
}

// Here for the modules that import them from releases.ts; their home is statements.ts.
export { insertChange, prepared };
