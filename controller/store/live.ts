// The active releases the store keeps in memory between reconcile passes, so a pass costs what it changes.
//
//   first pass of a release ──load (SQL, once)──▶ live: snapshot + the row each record was last written as
//   every pass: decide on the live snapshot ─▶ write the rows it touched ─▶ remember them as written
//   writes outside a pass (a result, a drained event, an agent's hello) update the live snapshot as they update SQLite
//   a failed transaction, or a release that ended ─▶ dropped (the next pass loads it again)
import type { Database, Statement } from 'better-sqlite3';
import { loadSnapshot, outOfServiceElsewhere, prepared } from './releases.js';
import { batchParams, releaseInstanceParams, releaseParams, toInstance, updateSql } from './rows.js';
import type { AgentStatus, CommandOutcome, InstanceRecord, ReconcileOutput, ReleaseInstanceRecord, ReleaseSnapshot } from '../domain/records.js';

/** One release held in memory. */
interface LiveRelease {
  snapshot: ReleaseSnapshot;
  byInstance: Map<string, ReleaseInstanceRecord>;
  /** The row each record was last read or written as (JSON of its SQL params): a pass writes a row only if it differs. */
  written: WeakMap<object, string>;
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
      live.written.set(snapshot.release, JSON.stringify(releaseParams(snapshot.release)));
      for (const b of snapshot.batches) live.written.set(b, batchKey(b));
      for (const i of snapshot.instances) live.written.set(i, JSON.stringify(releaseInstanceParams(i)));
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
    live.written.set(record, JSON.stringify(releaseInstanceParams(record)));
  }

  /** The agent reported the app's instance (a command's result), as just written to SQLite. */
  noteReport(app: string, agentId: string, report: Partial<InstanceRecord>): void {
    for (const live of this.releases.values()) {
      const host = live.snapshot.release.app === app ? live.snapshot.hosts[agentId] : undefined;
      if (host) Object.assign(host, report);
    }
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
    const release = JSON.stringify(releaseParams(snapshot.release));
    if (release !== written.get(snapshot.release)) {
      run(this.db, 'releases', releaseParams(snapshot.release), ['id']);
      written.set(snapshot.release, release);
    }
    for (const batch of snapshot.batches) {
      const key = batchKey(batch);
      if (key === written.get(batch)) continue;
      run(this.db, 'batches', batchParams(batch), ['release_id', 'number']);
      written.set(batch, key);
    }
    const touched = out.touched;
    const candidates: Iterable<ReleaseInstanceRecord> = !touched || touched.all ? snapshot.instances : touched.instances;
    for (const instance of candidates) {
      const params = releaseInstanceParams(instance);
      const row = JSON.stringify(params);
      if (row === written.get(instance)) continue;
      run(this.db, 'release_instances', params, ['release_id', 'instance']);
      written.set(instance, row);
    }
    for (const a of out.abandoned) {
      snapshot.outcomes[a.commandId] = { ok: false, error: a.reason, finishedUnixMs: snapshot.release.updatedUnixMs, activeEdition: '', abandoned: true };
    }
  }
}

/** A batch's row without its member list, which never changes after the plan. */
function batchKey(batch: ReleaseSnapshot['batches'][number]): string {
  const { instances: _members, ...rest } = batchParams(batch);
  return JSON.stringify(rest);
}

function run(db: Database, table: string, params: Record<string, unknown>, keys: string[]): void {
  (prepared(db, updateSql(table, params, keys)) as Statement).run(params);
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
