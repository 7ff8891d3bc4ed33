// Agent upgrades in SQLite (docs/agent-upgrade.md): named operations on the upgrade and its targets; the caller runs
// a whole move (target, next batch's outbox rows, the upgrade's status) inside one Store.transaction().
import type { Database } from 'better-sqlite3';
import { NotFoundError } from '../../common/errors.js';
import {
  checkTargetMove,
  checkUpgradeMove,
  IN_FLIGHT,
  type AgentUpgradeStatus,
  type PlannedTarget,
  type UpgradeTargetStatus,
} from '../domain/agent-upgrade.js';
import { prepared } from './statements.js';

export interface AgentUpgradeRecord {
  id: string;
  version: string;
  url: string;
  sha256: string;
  size: number;
  status: AgentUpgradeStatus;
  message: string;
  batches: number;
  currentBatch: number;
  timeoutMs: number;
  createdBy: string;
  createdUnixMs: number;
  finishedUnixMs: number;
}

export interface UpgradeTargetRecord {
  upgradeId: string;
  agentId: string;
  group: string;
  batch: number;
  status: UpgradeTargetStatus;
  fromVersion: string;
  commandId: string;
  sentUnixMs: number;
  deadlineUnixMs: number;
  error: string;
  updatedUnixMs: number;
}

type Row = Record<string, any>;

const toUpgrade = (r: Row): AgentUpgradeRecord => ({
  id: r.id,
  version: r.version,
  url: r.url,
  sha256: r.sha256,
  size: r.size,
  status: r.status,
  message: r.message,
  batches: r.batches,
  currentBatch: r.current_batch,
  timeoutMs: r.timeout_ms,
  createdBy: r.created_by,
  createdUnixMs: r.created_unix_ms,
  finishedUnixMs: r.finished_unix_ms,
});

const toTarget = (r: Row): UpgradeTargetRecord => ({
  upgradeId: r.upgrade_id,
  agentId: r.agent_id,
  group: r.grp,
  batch: r.batch,
  status: r.status,
  fromVersion: r.from_version,
  commandId: r.command_id,
  sentUnixMs: r.sent_unix_ms,
  deadlineUnixMs: r.deadline_unix_ms,
  error: r.error,
  updatedUnixMs: r.updated_unix_ms,
});

const IN_FLIGHT_SQL = IN_FLIGHT.map((s) => `'${s}'`).join(', ');

export class AgentUpgradeQueries {
  constructor(private readonly db: Database) {}

  /** Writes the upgrade and its planned targets (all pending); the caller starts batch 1. */
  create(upgrade: Omit<AgentUpgradeRecord, 'status' | 'message' | 'currentBatch' | 'finishedUnixMs'>, plan: readonly PlannedTarget[]): void {
    prepared(
      this.db,
      `INSERT INTO agent_upgrades (id, version, url, sha256, size, status, batches, timeout_ms, created_by, created_unix_ms) VALUES (?, ?, ?, ?, ?, 'upgrading', ?, ?, ?, ?)`,
    ).run(upgrade.id, upgrade.version, upgrade.url, upgrade.sha256, upgrade.size, upgrade.batches, upgrade.timeoutMs, upgrade.createdBy, upgrade.createdUnixMs);
    const insert = prepared(
      this.db,
      `INSERT INTO agent_upgrade_targets (upgrade_id, agent_id, grp, batch, status, from_version, updated_unix_ms) VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
    );
    for (const t of plan) insert.run(upgrade.id, t.id, t.group, t.batch, t.version, upgrade.createdUnixMs);
  }

  get(id: string): AgentUpgradeRecord {
    const row = prepared(this.db, 'SELECT * FROM agent_upgrades WHERE id = ?').get(id) as Row | undefined;
    if (!row) throw new NotFoundError(`agent upgrade '${id}' does not exist`);
    return toUpgrade(row);
  }

  /** The newest upgrade, if any. */
  latest(): AgentUpgradeRecord | undefined {
    const row = prepared(this.db, 'SELECT * FROM agent_upgrades ORDER BY created_unix_ms DESC, rowid DESC LIMIT 1').get() as Row | undefined;
    return row ? toUpgrade(row) : undefined;
  }

  /** The upgrade in progress, if any (there is at most one). */
  active(): AgentUpgradeRecord | undefined {
    const row = prepared(this.db, `SELECT * FROM agent_upgrades WHERE status = 'upgrading' LIMIT 1`).get() as Row | undefined;
    return row ? toUpgrade(row) : undefined;
  }

  /** A target of any upgrade whose agent may still act on its command (sent, restarting), if there is one. */
  anyInFlight(): UpgradeTargetRecord | undefined {
    const row = prepared(this.db, `SELECT * FROM agent_upgrade_targets WHERE status IN (${IN_FLIGHT_SQL}) LIMIT 1`).get() as Row | undefined;
    return row ? toTarget(row) : undefined;
  }

  targets(id: string): UpgradeTargetRecord[] {
    return (prepared(this.db, 'SELECT * FROM agent_upgrade_targets WHERE upgrade_id = ? ORDER BY batch, grp, agent_id').all(id) as Row[]).map(toTarget);
  }

  /** The targets of one batch (the next batch to start). */
  batchTargets(id: string, batch: number): UpgradeTargetRecord[] {
    return (prepared(this.db, 'SELECT * FROM agent_upgrade_targets WHERE upgrade_id = ? AND batch = ? ORDER BY grp, agent_id').all(id, batch) as Row[]).map(toTarget);
  }

  /** True when every target of the batch came back upgraded (indexed: no walk over the whole upgrade per Hello). */
  batchDone(id: string, batch: number): boolean {
    return !prepared(this.db, `SELECT 1 FROM agent_upgrade_targets WHERE upgrade_id = ? AND batch = ? AND status != 'upgraded' LIMIT 1`).get(id, batch);
  }

  /** A failed target of the upgrade, if any. */
  firstFailed(id: string): UpgradeTargetRecord | undefined {
    const row = prepared(this.db, `SELECT * FROM agent_upgrade_targets WHERE upgrade_id = ? AND status = 'failed' ORDER BY updated_unix_ms LIMIT 1`).get(id) as Row | undefined;
    return row ? toTarget(row) : undefined;
  }

  /** How many targets of the upgrade the agents may still act on (sent, restarting). */
  inFlightCount(id: string): number {
    return prepared(this.db, `SELECT count(*) FROM agent_upgrade_targets WHERE upgrade_id = ? AND status IN (${IN_FLIGHT_SQL})`).pluck().get(id) as number;
  }

  /** Every target not yet sent is skipped (the upgrade failed or was cancelled), in one statement. */
  skipPending(id: string, now: number): void {
    checkTargetMove('*', 'pending', 'skipped');
    prepared(this.db, `UPDATE agent_upgrade_targets SET status = 'skipped', updated_unix_ms = ? WHERE upgrade_id = ? AND status = 'pending'`).run(now, id);
  }

  target(id: string, agentId: string): UpgradeTargetRecord | undefined {
    const row = prepared(this.db, 'SELECT * FROM agent_upgrade_targets WHERE upgrade_id = ? AND agent_id = ?').get(id, agentId) as Row | undefined;
    return row ? toTarget(row) : undefined;
  }

  /** The agent's target that a Hello or a result may still move (at most one: one upgrade runs at a time). */
  inFlightOf(agentId: string): UpgradeTargetRecord | undefined {
    const row = prepared(this.db, `SELECT * FROM agent_upgrade_targets WHERE agent_id = ? AND status IN (${IN_FLIGHT_SQL}) ORDER BY updated_unix_ms DESC LIMIT 1`).get(agentId) as
      | Row
      | undefined;
    return row ? toTarget(row) : undefined;
  }

  byCommand(commandId: string): UpgradeTargetRecord | undefined {
    const row = prepared(this.db, 'SELECT * FROM agent_upgrade_targets WHERE command_id = ?').get(commandId) as Row | undefined;
    return row ? toTarget(row) : undefined;
  }

  /** Marks the target sent and writes its command to the outbox, in the caller's transaction. */
  send(t: UpgradeTargetRecord, commandId: string, payload: Uint8Array, now: number, deadline: number): void {
    checkTargetMove(t.agentId, t.status, 'sent');
    prepared(
      this.db,
      `UPDATE agent_upgrade_targets SET status = 'sent', command_id = ?, sent_unix_ms = ?, deadline_unix_ms = ?, updated_unix_ms = ? WHERE upgrade_id = ? AND agent_id = ?`,
    ).run(commandId, now, deadline, now, t.upgradeId, t.agentId);
    prepared(
      this.db,
      `INSERT INTO outbox (command_id, agent_id, release_id, instance, kind, payload, created_unix_ms, result, done) VALUES (?, ?, ?, ?, 'UpgradeAgent', ?, ?, NULL, 0)`,
    ).run(commandId, t.agentId, t.upgradeId, t.agentId, Buffer.from(payload), now);
  }

  /** Moves a target; a final move also closes its command in the outbox so it is never re-sent. */
  moveTarget(t: UpgradeTargetRecord, to: UpgradeTargetStatus, now: number, error = ''): void {
    checkTargetMove(t.agentId, t.status, to);
    prepared(this.db, 'UPDATE agent_upgrade_targets SET status = ?, error = ?, updated_unix_ms = ? WHERE upgrade_id = ? AND agent_id = ?').run(
      to,
      error,
      now,
      t.upgradeId,
      t.agentId,
    );
    if ((to === 'upgraded' || to === 'failed') && t.commandId) this.closeCommand(t.commandId, { ok: to === 'upgraded', error });
    t.status = to;
    t.error = error;
  }

  /** Records a command's result in the outbox (done: not re-sent). */
  closeCommand(commandId: string, outcome: { ok: boolean; error: string }): void {
    prepared(this.db, 'UPDATE outbox SET done = 1, result = ? WHERE command_id = ? AND done = 0').run(JSON.stringify(outcome), commandId);
  }

  setCurrentBatch(id: string, batch: number): void {
    prepared(this.db, 'UPDATE agent_upgrades SET current_batch = ? WHERE id = ?').run(batch, id);
  }

  finish(u: AgentUpgradeRecord, to: AgentUpgradeStatus, message: string, now: number): void {
    checkUpgradeMove(u.id, u.status, to);
    prepared(this.db, 'UPDATE agent_upgrades SET status = ?, message = ?, finished_unix_ms = ? WHERE id = ?').run(to, message, now, u.id);
    u.status = to;
    u.message = message;
    u.finishedUnixMs = now;
  }

  /** The version the agent said in its last Hello ('' unknown). */
  agentVersion(agentId: string): string {
    return (prepared(this.db, 'SELECT version FROM agents WHERE id = ?').pluck().get(agentId) as string | undefined) ?? '';
  }

  /** Targets whose deadline passed while the agent may still act. */
  overdue(now: number): UpgradeTargetRecord[] {
    return (
      prepared(this.db, `SELECT * FROM agent_upgrade_targets WHERE status IN (${IN_FLIGHT_SQL}) AND deadline_unix_ms > 0 AND deadline_unix_ms <= ?`).all(now) as Row[]
    ).map(toTarget);
  }

  /** The earliest deadline of a target in flight, or null. */
  nextDeadline(): number | null {
    const at = prepared(this.db, `SELECT min(deadline_unix_ms) FROM agent_upgrade_targets WHERE status IN (${IN_FLIGHT_SQL}) AND deadline_unix_ms > 0`).pluck().get() as
      | number
      | null;
    return at ?? null;
  }
}
