// Maps SQLite rows to domain records and back; the only place that knows column names besides the SQL.
import type {
  AgentRecord,
  AppRecord,
  BatchRecord,
  ChangeRecordRow,
  EditionRecord,
  InstanceRecord,
  ReleaseInstanceRecord,
  ReleaseRecord,
  StepRow,
} from '../domain/records.js';

// Rows come from better-sqlite3 as plain objects of unknown shape.
export type Row = Record<string, any>;

export function toApp(r: Row): AppRecord {
  return {
    name: r.name,
    startCommand: JSON.parse(r.start_command),
    env: JSON.parse(r.env),
    portEnv: r.port_env,
    healthPath: r.health_path,
    stopTimeoutMs: r.stop_timeout_ms,
    createdUnixMs: r.created_unix_ms,
    drainMode: r.drain_mode,
    quiesceHook: r.quiesce_hook,
    inflightPath: r.inflight_path,
    updateOrder: r.update_order || undefined,
    startGraceMs: r.start_grace_ms ?? 0,
    healthInitialIntervalMs: r.health_initial_interval_ms ?? 0,
    holdMs: r.hold_ms ?? 0,
  };
}

export function toEdition(r: Row): EditionRecord {
  return {
    app: r.app,
    name: r.name,
    description: r.description,
    url: r.url,
    sha256: r.sha256,
    size: r.size,
    format: r.format,
    fileName: r.file_name,
    createdUnixMs: r.created_unix_ms,
  };
}

export function toAgent(r: Row): AgentRecord {
  return {
    id: r.id,
    host: r.host,
    group: r.grp,
    labels: JSON.parse(r.labels),
    status: r.status,
    lastSeenUnixMs: r.last_seen_unix_ms,
    connectedUnixMs: r.connected_unix_ms,
    bootId: r.boot_id,
    version: r.version,
  };
}

export function toInstance(r: Row): InstanceRecord {
  return {
    app: r.app,
    agentId: r.agent_id,
    group: r.grp,
    servicePort: r.service_port,
    activeEdition: r.active_edition,
    keptEditions: JSON.parse(r.kept_editions),
    processState: r.process_state,
    quiesced: r.quiesced === 1,
    updatedUnixMs: r.updated_unix_ms,
  };
}

export function toRelease(r: Row): ReleaseRecord {
  return {
    id: r.id,
    app: r.app,
    edition: r.edition,
    group: r.grp,
    status: r.status,
    message: r.message,
    spec: JSON.parse(r.spec),
    createdUnixMs: r.created_unix_ms,
    updatedUnixMs: r.updated_unix_ms,
    finishedUnixMs: r.finished_unix_ms,
    createdBy: r.created_by,
    batchCount: r.batch_count,
    currentBatch: r.current_batch,
    waitingFor: r.waiting_for,
    nextBatchAt: r.next_batch_at ?? null,
    stopReason: r.stop_reason ?? null,
    revert: r.revert === 1,
    rollbackBatches: r.rollback_batches ?? 0,
    rollbackCurrent: r.rollback_current ?? 0,
    takesDefault: r.takes_default === 1,
    fromDefault: JSON.parse(r.from_default ?? '[]'),
    routePhase: r.route_phase ?? '',
  };
}

export function releaseParams(x: ReleaseRecord): Row {
  return {
    id: x.id,
    app: x.app,
    edition: x.edition,
    grp: x.group,
    status: x.status,
    message: x.message,
    spec: JSON.stringify(x.spec),
    created_unix_ms: x.createdUnixMs,
    updated_unix_ms: x.updatedUnixMs,
    finished_unix_ms: x.finishedUnixMs,
    created_by: x.createdBy,
    batch_count: x.batchCount,
    current_batch: x.currentBatch,
    waiting_for: x.waitingFor,
    next_batch_at: x.nextBatchAt,
    stop_reason: x.stopReason,
    revert: x.revert ? 1 : 0,
    rollback_batches: x.rollbackBatches,
    rollback_current: x.rollbackCurrent,
    takes_default: x.takesDefault ? 1 : 0,
    from_default: JSON.stringify(x.fromDefault),
    route_phase: x.routePhase,
  };
}

export function toBatch(r: Row): BatchRecord {
  return {
    releaseId: r.release_id,
    number: r.number,
    group: r.grp,
    status: r.status,
    instances: JSON.parse(r.instances),
    startedUnixMs: r.started_unix_ms,
    finishedUnixMs: r.finished_unix_ms,
    checkpoint: r.checkpoint,
    checkpointBy: r.checkpoint_by,
    checkpointComment: r.checkpoint_comment,
    cleared: r.cleared === 1,
  };
}

export function batchParams(x: BatchRecord): Row {
  return {
    release_id: x.releaseId,
    number: x.number,
    grp: x.group,
    status: x.status,
    instances: JSON.stringify(x.instances),
    started_unix_ms: x.startedUnixMs,
    finished_unix_ms: x.finishedUnixMs,
    checkpoint: x.checkpoint,
    checkpoint_by: x.checkpointBy,
    checkpoint_comment: x.checkpointComment,
    cleared: x.cleared ? 1 : 0,
  };
}

export function toReleaseInstance(r: Row): ReleaseInstanceRecord {
  return {
    releaseId: r.release_id,
    instance: r.instance,
    group: r.grp,
    batch: r.batch,
    status: r.status,
    step: r.step,
    stepState: r.step_state,
    stepStartedUnixMs: r.step_started_unix_ms,
    phase: r.phase,
    commandId: r.command_id ?? null,
    deadlineUnixMs: r.deadline_unix_ms ?? null,
    drained: r.drained === 1,
    downloaded: r.downloaded === 1,
    moved: r.moved,
    error: r.error,
    fromEdition: r.from_edition ?? null,
    rollbackBatch: r.rollback_batch ?? 0,
    updateOrder: r.update_order ?? '',
  };
}

export function releaseInstanceParams(x: ReleaseInstanceRecord): Row {
  return {
    release_id: x.releaseId,
    instance: x.instance,
    grp: x.group,
    batch: x.batch,
    status: x.status,
    step: x.step,
    step_state: x.stepState,
    step_started_unix_ms: x.stepStartedUnixMs,
    phase: x.phase,
    command_id: x.commandId,
    deadline_unix_ms: x.deadlineUnixMs,
    drained: x.drained ? 1 : 0,
    downloaded: x.downloaded ? 1 : 0,
    moved: x.moved,
    error: x.error,
    from_edition: x.fromEdition,
    rollback_batch: x.rollbackBatch,
    update_order: x.updateOrder,
  };
}

export function toStep(r: Row): StepRow {
  return {
    releaseId: r.release_id,
    instance: r.instance,
    step: r.step,
    phase: r.phase,
    status: r.status,
    startedUnixMs: r.started_unix_ms,
    finishedUnixMs: r.finished_unix_ms,
    error: r.error,
  };
}

export function toChange(r: Row): ChangeRecordRow {
  return {
    atUnixMs: r.at_unix_ms,
    actor: r.actor,
    action: r.action,
    app: r.app,
    releaseId: r.release_id,
    comment: r.comment,
    result: r.result,
  };
}

/** `INSERT INTO t (a, b) VALUES (@a, @b)` for the keys of a params object. */
export function insertSql(table: string, params: Row): string {
  const keys = Object.keys(params);
  return `INSERT INTO ${table} (${keys.join(', ')}) VALUES (${keys.map((k) => '@' + k).join(', ')})`;
}

/** `UPDATE t SET a = @a, ... WHERE k = @k` for every non-key column of a params object. */
export function updateSql(table: string, params: Row, keys: string[]): string {
  const sets = Object.keys(params).filter((k) => !keys.includes(k));
  return `UPDATE ${table} SET ${sets.map((k) => `${k} = @${k}`).join(', ')} WHERE ${keys.map((k) => `${k} = @${k}`).join(' AND ')}`;
}
