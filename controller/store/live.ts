// The active releases the store keeps in memory between reconcile passes, so a pass costs what it changes.
//
//   first pass of a release ──load (SQL, once)──▶ live: snapshot + the row each record was last written as
//   every pass: decide on the live snapshot ─▶ write the rows it touched ─▶ remember them as written
//   writes outside a pass (a result, a drained event, an agent's hello) update the live snapshot as they update SQLite
//   a failed transaction, or a release that ended ─▶ dropped (the next pass loads it again)
import type { Database, Statement } from 'better-sqlite3';
import { loadSnapshot, outOfServiceElsewhere, prepared } from './releases.js';
import { batchParams, releaseInstanceParams, releaseParams, toInstance, updateSql, type Row } from './rows.js';
import type { AgentStatus, CommandOutcome, InstanceRecord, ReconcileOutput, ReleaseInstanceRecord, ReleaseSnapshot } from '../domain/records.js';

/** One release held in memory. */
interface LiveRelease {
  snapshot: ReleaseSnapshot;
  byInstance: Map<string, ReleaseInstanceRecord>;
  /** The row each record was last read or written as (its SQL params): a pass writes only the columns that differ. */
  written: WeakMap<object, Row>;
}

/** Set (to 1) by the test suites: every pass also compares every row, and a change the pass did not declare throws. */
const VERIFY = process.env.FLEETWAVE_VERIFY_TOUCHED === '1';

export class LiveReleases {
  private readonly releases = new Map<string, LiveRelease>();

  constructor(private readonly db: Database) {}

  /** The release's live snapshot (loaded on first use), with what other active releases hold out of service now. */
  get(id: string): LiveRelease {
    let live = this.releases.get(id);
    if (!live) {
      const snapshot = loadSnapshot(this.db, id);
      live = { snapshot, byInstance: new Map(snapshot.instances.map((i) => [i.instance, i])), written: new WeakMap() };
      live.written.set(snapshot.release, releaseParams(snapshot.release));
      for (const b of snapshot.batches) live.written.set(b, batchRow(b));
      for (const i of snapshot.instances) live.written.set(i, releaseInstanceParams(i));
      this.releases.set(id, live);
    } else {
      live.snapshot.elsewhere = outOfServiceElsewhere(this.db, live.snapshot.release);
    }
    return live;
  }

  /** Runs a pass's `decide` on the live snapshot and writes what it changed; the caller's transaction commits both. */
  reconcile<T extends ReconcileOutput>(id: string, decide: (snapshot: ReleaseSnapshot) => T): { snapshot: ReleaseSnapshot; output: T } {
    const live = this.get(id);
    const before = VERIFY ? structuredClone(live.snapshot) : undefined;
    const output = decide(live.snapshot);
    if (before) verifyTouched(before, live.snapshot, output);
    this.write(live, output);
    return { snapshot: live.snapshot, output };
  }

  /** Forgets one release (ended, or its transaction failed) or all of them. */
  drop(id?: string): void {
    if (id === undefined) this.releases.clear();
    else this.releases.delete(id);
  }

  /** A command's result was recorded: the release that waits on it sees it. */
  noteOutcome(releaseId: string, commandId: string, outcome: CommandOutcome): void {
    const live = this.releases.get(releaseId);
    if (live) live.snapshot.outcomes[commandId] = outcome;
  }

  /** A `drained` event was recorded in SQLite for the instance. */
  noteDrained(releaseId: string, instance: string): void {
    const live = this.releases.get(releaseId);
    const record = live?.byInstance.get(instance);
    if (!live || !record) return;
    record.drained = true;
    live.written.set(record, releaseInstanceParams(record));
  }

  /** The agent reported the app's instance (a command's result), as just written to SQLite. */
  noteReport(app: string, agentId: string, report: Partial<InstanceRecord>): void {
    for (const live of this.releases.values()) {
      const host = live.snapshot.release.app === app ? live.snapshot.hosts[agentId] : undefined;
      if (host) Object.assign(host, report);
    }
  }

  /** True when a live release holds exactly this report of the app's instance (its row in SQLite says the same). */
  holdsReport(app: string, agentId: string, report: Pick<InstanceRecord, 'activeEdition' | 'keptEditions' | 'processState' | 'quiesced'>): boolean {
    for (const live of this.releases.values()) {
      const host = live.snapshot.release.app === app ? live.snapshot.hosts[agentId] : undefined;
      if (!host) continue;
      return (
        host.activeEdition === report.activeEdition &&
        host.processState === report.processState &&
        host.quiesced === report.quiesced &&
        host.keptEditions.length === report.keptEditions.length &&
        host.keptEditions.every((e, k) => e === report.keptEditions[k])
      );
    }
    return false;
  }

  /** The agent's instances or status changed in SQLite: every live release with it reads its rows again. */
  noteAgent(agentId: string): void {
    for (const live of this.releases.values()) {
      if (!live.byInstance.has(agentId)) continue;
      const row = prepared(this.db, 'SELECT i.*, a.status AS agent_status FROM instances i JOIN agents a ON a.id = i.agent_id WHERE i.app = ? AND i.agent_id = ?').get(
        live.snapshot.release.app,
        agentId,
      ) as any;
      live.snapshot.hosts[agentId] = row ? toInstance(row) : undefined;
      // As loadSnapshot reads them: an agent without an instance of the app has neither.
      live.snapshot.agentStatus[agentId] = row ? (row.agent_status as AgentStatus) : undefined;
    }
  }

  private write(live: LiveRelease, out: ReconcileOutput): void {
    const { snapshot, written } = live;
    const release = releaseParams(snapshot.release);
    if (updateChanged(this.db, 'releases', release, written.get(snapshot.release), ['id'])) written.set(snapshot.release, release);
    for (const batch of snapshot.batches) {
      const row = batchRow(batch);
      if (updateChanged(this.db, 'batches', row, written.get(batch), ['release_id', 'number'])) written.set(batch, row);
    }
    const touched = out.touched;
    const candidates: Iterable<ReleaseInstanceRecord> = !touched || touched.all ? snapshot.instances : touched.instances;
    for (const instance of candidates) {
      const row = releaseInstanceParams(instance);
      if (updateChanged(this.db, 'release_instances', row, written.get(instance), ['release_id', 'instance'])) written.set(instance, row);
    }
    for (const a of out.abandoned) {
      snapshot.outcomes[a.commandId] = { ok: false, error: a.reason, finishedUnixMs: snapshot.release.updatedUnixMs, activeEdition: '', abandoned: true };
    }
  }
}

/** A batch's row without its member list, which never changes after the plan. */
function batchRow(batch: ReleaseSnapshot['batches'][number]): Row {
  const { instances: _members, ...rest } = batchParams(batch);
  return rest;
}

/**
 * Updates only the columns that differ from the row as last written (all of them when it is not known); false when
 * none differs. An UPDATE rewrites the entries of every index on a column it sets, changed or not, so a step that
 * moves one instance's status and deadline touches those indexes only.
 */
function updateChanged(db: Database, table: string, row: Row, before: Row | undefined, keys: string[]): boolean {
  const sets = Object.keys(row).filter((k) => !keys.includes(k) && (before === undefined || before[k] !== row[k]));
  if (sets.length === 0) return false;
  const params: Row = {};
  for (const k of keys) params[k] = row[k];
  for (const k of sets) params[k] = row[k];
  (prepared(db, updateSql(table, params, keys)) as Statement).run(params);
  return true;
}

/** Throws when the pass changed an instance row it did not declare in `touched` (it would never be written). */
function verifyTouched(before: ReleaseSnapshot, after: ReleaseSnapshot, out: ReconcileOutput): void {
  const touched = out.touched;
  if (!touched || touched.all) return;
  after.instances.forEach((instance, k) => {
    if (touched.instances.has(instance)) return;
    const was = JSON.stringify(releaseInstanceParams(before.instances[k]!));
    const now = JSON.stringify(releaseInstanceParams(instance));
    if (was !== now) throw new Error(`reconcile changed instance ${instance.instance} without touching it: ${was} → ${now}`);
  });
}
