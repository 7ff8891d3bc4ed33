// The SQLite schema as numbered migrations, applied once each and recorded in `migrations`.
import type { Database } from 'better-sqlite3';

/** Append only: a released migration is never edited, a change is a new entry. */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        start_command TEXT NOT NULL,
        env TEXT NOT NULL,
        port_env TEXT NOT NULL,
        health_path TEXT NOT NULL,
        stop_timeout_ms INTEGER NOT NULL,
        created_unix_ms INTEGER NOT NULL
      );
      CREATE TABLE editions (
        app TEXT NOT NULL REFERENCES apps(name),
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        url TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        file_name TEXT NOT NULL,
        created_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (app, name)
      );
      CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        grp TEXT NOT NULL,
        labels TEXT NOT NULL,
        status TEXT NOT NULL,
        last_seen_unix_ms INTEGER NOT NULL,
        connected_unix_ms INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        version TEXT NOT NULL
      );
      CREATE TABLE instances (
        app TEXT NOT NULL,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        grp TEXT NOT NULL,
        service_port INTEGER NOT NULL,
        active_edition TEXT NOT NULL,
        kept_editions TEXT NOT NULL,
        process_state TEXT NOT NULL,
        quiesced INTEGER NOT NULL,
        updated_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (app, agent_id)
      );
      CREATE TABLE releases (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        app TEXT NOT NULL,
        edition TEXT NOT NULL,
        grp TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_unix_ms INTEGER NOT NULL,
        updated_unix_ms INTEGER NOT NULL,
        finished_unix_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        batch_count INTEGER NOT NULL,
        current_batch INTEGER NOT NULL,
        waiting_for TEXT NOT NULL,
        next_batch_at INTEGER,
        stop_reason TEXT,
        revert INTEGER NOT NULL
      );
      CREATE INDEX releases_app ON releases(app, status);
      CREATE TABLE batches (
        release_id TEXT NOT NULL REFERENCES releases(id),
        number INTEGER NOT NULL,
        grp TEXT NOT NULL,
        status TEXT NOT NULL,
        instances TEXT NOT NULL,
        started_unix_ms INTEGER NOT NULL,
        finished_unix_ms INTEGER NOT NULL,
        checkpoint TEXT NOT NULL,
        checkpoint_by TEXT NOT NULL,
        checkpoint_comment TEXT NOT NULL,
        cleared INTEGER NOT NULL,
        PRIMARY KEY (release_id, number)
      );
      CREATE TABLE release_instances (
        release_id TEXT NOT NULL REFERENCES releases(id),
        instance TEXT NOT NULL,
        grp TEXT NOT NULL,
        batch INTEGER NOT NULL,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        step_state TEXT NOT NULL,
        step_started_unix_ms INTEGER NOT NULL,
        phase TEXT NOT NULL,
        command_id TEXT,
        deadline_unix_ms INTEGER,
        drained INTEGER NOT NULL,
        downloaded INTEGER NOT NULL,
        moved TEXT NOT NULL,
        error TEXT NOT NULL,
        from_edition TEXT,
        PRIMARY KEY (release_id, instance)
      );
      CREATE INDEX release_instances_deadline ON release_instances(deadline_unix_ms) WHERE deadline_unix_ms IS NOT NULL;
      CREATE TABLE steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        release_id TEXT NOT NULL,
        instance TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL,
        started_unix_ms INTEGER NOT NULL,
        finished_unix_ms INTEGER NOT NULL,
        error TEXT NOT NULL
      );
      CREATE INDEX steps_release ON steps(release_id, instance);
      CREATE TABLE change_records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_unix_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        app TEXT NOT NULL,
        release_id TEXT NOT NULL,
        comment TEXT NOT NULL,
        result TEXT NOT NULL
      );
      CREATE INDEX change_records_app ON change_records(app);
      CREATE TABLE outbox (
        command_id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        release_id TEXT NOT NULL,
        instance TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_unix_ms INTEGER NOT NULL,
        result TEXT,
        done INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX outbox_pending ON outbox(agent_id, done);
    `,
  },
  {
    version: 2,
    name: 'rollback',
    sql: `
      ALTER TABLE releases ADD COLUMN rollback_batches INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE releases ADD COLUMN rollback_current INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE release_instances ADD COLUMN rollback_batch INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 3,
    name: 'app drain mode',
    sql: `
      ALTER TABLE apps ADD COLUMN drain_mode TEXT NOT NULL DEFAULT 'gate';
      ALTER TABLE apps ADD COLUMN quiesce_hook TEXT NOT NULL DEFAULT '';
      ALTER TABLE apps ADD COLUMN inflight_path TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 4,
    name: 'step phase',
    // upgrade / deploy / revert / rollback: a rollback's steps are told apart from the forward ones of the same name.
    sql: `ALTER TABLE steps ADD COLUMN phase TEXT NOT NULL DEFAULT '';`,
  },
  {
    version: 5,
    name: 'agent event keys',
    // The Ed25519 public key (SPKI DER, base64) an agent gave in its last Hello; '' when none (or revoked).
    sql: `ALTER TABLE agents ADD COLUMN event_key TEXT NOT NULL DEFAULT '';`,
  },
  {
    version: 6,
    name: 'update order',
    // Apps stored before keep the stop-first they always had; a release instance records the order its restart used.
    sql: `
      ALTER TABLE apps ADD COLUMN update_order TEXT NOT NULL DEFAULT 'stop-first';
      ALTER TABLE release_instances ADD COLUMN update_order TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 7,
    name: 'app start timing',
    // 0: the agent's defaults (start grace 500 ms, first health probe wait 50 ms).
    sql: `
      ALTER TABLE apps ADD COLUMN start_grace_ms INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE apps ADD COLUMN health_initial_interval_ms INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 8,
    name: 'app hold limit',
    // The gate's hold limit for this app in ms; 0: the agent's --gate-hold.
    sql: `ALTER TABLE apps ADD COLUMN hold_ms INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    version: 9,
    name: 'list indexes',
    // Paged listings (store/lists.ts): each filter shape reads a page in key order from an index and counts from one.
    sql: `
      CREATE INDEX agents_group ON agents(grp, status, id);
      CREATE INDEX agents_status ON agents(status, id);
      CREATE INDEX instances_list ON instances(app, grp, agent_id);
      CREATE INDEX instances_agent ON instances(agent_id, active_edition);
      CREATE INDEX release_instances_page ON release_instances(release_id, batch, instance);
      CREATE INDEX release_instances_status ON release_instances(release_id, status, batch, instance);
      CREATE INDEX change_records_release ON change_records(release_id, id);
    `,
  },
  {
    version: 10,
    name: 'outbox by instance',
    // A `drained` event checks it answers the instance's newest Quiesce (Store.recordDrained): without this index
    // every event scanned the whole outbox, O(N) per event and O(N²) per release.
    sql: `CREATE INDEX outbox_instance ON outbox(release_id, instance, kind);`,
  },
  {
    version: 11,
    // Issue 11: the edition router. Routing rules; what a release does to the app's default editions and where an
    // atomic release is at the routers; where routers reach an agent's gates; instances changed since a time.
    name: 'routing',
    sql: `
      CREATE TABLE routes (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name),
        edition TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        percent INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        created_unix_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL
      );
      CREATE INDEX routes_app ON routes(app, priority, created_unix_ms);
      ALTER TABLE releases ADD COLUMN takes_default INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE releases ADD COLUMN from_default TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE releases ADD COLUMN route_phase TEXT NOT NULL DEFAULT '';
      ALTER TABLE agents ADD COLUMN address TEXT NOT NULL DEFAULT '';
      CREATE INDEX instances_changed ON instances(app, updated_unix_ms);
    `,
  },
  {
    version: 12,
    // Issue 11: validation mode. A validation clone of a target: its instances, env overrides, the rule that sends the
    // selected users there (route_*: the match; route_id once added), its releases, and where its lifecycle is
    // (controller/domain/validation.ts). Its removal's StopApp commands are outbox rows whose release_id is its id.
    name: 'validations',
    sql: `
      CREATE TABLE validations (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name),
        edition TEXT NOT NULL,
        target_group TEXT NOT NULL,
        clone_group TEXT NOT NULL,
        clone_instances TEXT NOT NULL,
        env TEXT NOT NULL,
        route_kind TEXT NOT NULL,
        route_name TEXT NOT NULL,
        route_value TEXT NOT NULL,
        route_percent INTEGER NOT NULL,
        route_id TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT '',
        release_id TEXT NOT NULL DEFAULT '',
        rollout_release_id TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL,
        created_unix_ms INTEGER NOT NULL,
        finished_unix_ms INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX validations_app ON validations(app, status);
    `,
  },
  {
    version: 13,
    // Issue 12: agent self-upgrade (docs/agent-upgrade.md). One row per upgrade and one per agent it targets; the
    // UpgradeAgent commands are outbox rows whose release_id is the upgrade's id and instance the agent's id.
    name: 'agent upgrades',
    sql: `
      CREATE TABLE agent_upgrades (
        id TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        url TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        batches INTEGER NOT NULL,
        current_batch INTEGER NOT NULL DEFAULT 0,
        timeout_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        created_unix_ms INTEGER NOT NULL,
        finished_unix_ms INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX agent_upgrades_status ON agent_upgrades(status);
      CREATE TABLE agent_upgrade_targets (
        upgrade_id TEXT NOT NULL REFERENCES agent_upgrades(id),
        agent_id TEXT NOT NULL,
        grp TEXT NOT NULL,
        batch INTEGER NOT NULL,
        status TEXT NOT NULL,
        from_version TEXT NOT NULL,
        command_id TEXT NOT NULL DEFAULT '',
        sent_unix_ms INTEGER NOT NULL DEFAULT 0,
        deadline_unix_ms INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        updated_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (upgrade_id, agent_id)
      );
      CREATE INDEX agent_upgrade_targets_agent ON agent_upgrade_targets(agent_id, status);
      CREATE INDEX agent_upgrade_targets_batch ON agent_upgrade_targets(upgrade_id, batch, status);
      CREATE INDEX agent_upgrade_targets_status ON agent_upgrade_targets(upgrade_id, status);
      CREATE INDEX agent_upgrade_targets_command ON agent_upgrade_targets(command_id);
      CREATE INDEX agent_upgrade_targets_deadline ON agent_upgrade_targets(status, deadline_unix_ms);
    `,
  },
  {
    version: 14,
    // Issue 13: webhook notifications (docs/notifications.md). One row per notifier, one per event it is to be sent;
    // a delivery is pending until a 2xx (delivered) or its last attempt (dead), so a restart resumes the pending ones.
    name: 'notifications',
    sql: `
      CREATE TABLE notifiers (
        name TEXT PRIMARY KEY,
        kinds TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_unix_ms INTEGER NOT NULL
      );
      CREATE TABLE notification_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        notifier TEXT NOT NULL REFERENCES notifiers(name) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_unix_ms INTEGER NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        created_unix_ms INTEGER NOT NULL,
        updated_unix_ms INTEGER NOT NULL,
        UNIQUE (notifier, event_id)
      );
      CREATE INDEX notification_deliveries_due ON notification_deliveries(status, next_attempt_unix_ms);
      CREATE INDEX notification_deliveries_notifier ON notification_deliveries(notifier, status);
    `,
  },
];

/** Applies the migrations not yet recorded; safe to run on every open. */
export function migrate(db: Database, now: number): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_unix_ms INTEGER NOT NULL)');
  const applied = new Set(db.prepare('SELECT version FROM migrations').pluck().all() as number[]);
  const ran: number[] = [];
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO migrations (version, name, applied_unix_ms) VALUES (?, ?, ?)').run(migration.version, migration.name, now);
    })();
    ran.push(migration.version);
  }
  return ran;
}
