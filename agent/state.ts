// The agent's durable state: the command journal (commands.jsonl, command-journal.ts) and per-app records (apps.json).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { CommandJournal, type JournalEntry, type StoredResult } from './command-journal.js';
import { JsonFile } from './json-file.js';
import type { JournalLogOptions } from './journal-log.js';

export type { JournalEntry, StoredResult };

/** What the agent remembers of one app across its own restarts. */
export interface AppRecord {
  /** Edition the app runs (or would run when started); '' before the first start. */
  activeEdition: string;
  /** Edition active before the last switch; kept on disk for back-out. */
  previousEdition: string;
  /** Whether the app should run: StopApp sets 'stopped', starts set 'running'; the agent restores it at start. */
  desired: 'running' | 'stopped';
  /** Last AppSpec the controller sent, so the agent can start the app after its own restart. */
  spec?: AppSpec;
  /** Editions on disk, newest first (a copy; the edition directories are the truth). */
  keptEditions: string[];
  /**
   * Set by Quiesce, cleared by a successful HealthCheck: a restarted agent opens the gate quiesced again, since the
   * controller believes this instance drained until it sees it healthy.
   */
  quiesced?: boolean;
  /** The running process, so a restarted agent can adopt it (same pid and /proc start time) instead of starting another. */
  pid?: number;
  pidStartTime?: string;
  /** The edition that process runs (the active edition may not be recorded yet when the agent died mid-restart). */
  pidEdition?: string;
  /** The internal port the app listens on behind the gate (a start-first restart moves it); kept so an adopted app and its gate's target agree. */
  internalPort?: number;
  /**
   * Second processes of a start-first restart (the new one before the switch, the old one while it drains): an agent
   * that died with one running has it stopped (SIGTERM) by the next run, which adopts only `pid`.
   */
  spares?: Array<{ pid: number; pidStartTime: string }>;
}

export function emptyAppRecord(): AppRecord {
  return { activeEdition: '', previousEdition: '', desired: 'stopped', keptEditions: [] };
}

export class AgentState {
  private constructor(
    readonly dataDir: string,
    /** The command journal; `journal.load` says what the open found (skipped lines, migrated entries). */
    readonly journal: CommandJournal,
    private readonly appsFile: JsonFile<Record<string, AppRecord>>,
    private readonly apps: Map<string, AppRecord>,
  ) {}

  /** `journalOptions`: compaction bounds and file operations, for tests and the benchmark. */
  static async open(dataDir: string, journalOptions?: JournalLogOptions): Promise<AgentState> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const journal = await CommandJournal.open(dataDir, journalOptions);
    const appsFile = new JsonFile<Record<string, AppRecord>>(join(dataDir, 'apps.json'));
    const apps = new Map(Object.entries((await appsFile.read()) ?? {}));
    return new AgentState(dataDir, journal, appsFile, apps);
  }

  /** Directory of one app: editions, downloads, app.log. */
  appDir(app: string): string {
    return join(this.dataDir, 'apps', app);
  }

  command(id: string): JournalEntry | undefined {
    return this.journal.get(id);
  }

  /** Records that a command starts; durable before it runs. */
  beginCommand(id: string, kind: string, app: string, startedAt: number, edition?: string): Promise<void> {
    return this.journal.begin(id, kind, app, startedAt, edition);
  }

  /** Records that a hard reset's hook starts; durable before the hook may reboot the host. */
  markResetHook(id: string, bootId: string, startedAt: number): Promise<void> {
    return this.journal.markResetHook(id, bootId, startedAt);
  }

  /** Records a command's result; durable before the result is sent. */
  finishCommand(id: string, result: StoredResult): Promise<void> {
    return this.journal.finish(id, result);
  }

  /** The newest unfinished RestartApp/StartApp of `app` (the agent died while it ran), with the edition it moved to. */
  unfinishedSwitch(app: string): (JournalEntry & { id: string; edition: string }) | undefined {
    let found: (JournalEntry & { id: string; edition: string }) | undefined;
    for (const [id, entry] of this.journal.all()) {
      if (entry.app !== app || entry.result || !entry.edition || (entry.kind !== 'restartApp' && entry.kind !== 'startApp')) continue;
      if (!found || entry.startedAt >= found.startedAt) found = { ...entry, id, edition: entry.edition };
    }
    return found;
  }

  app(app: string): AppRecord {
    return this.apps.get(app) ?? emptyAppRecord();
  }

  async updateApp(app: string, patch: Partial<AppRecord>): Promise<AppRecord> {
    const next = { ...this.app(app), ...patch };
    this.apps.set(app, next);
    await this.appsFile.save(Object.fromEntries(this.apps));
    return next;
  }

  /** Waits for pending writes (an agent stopping must not leave a write behind). */
  async flush(): Promise<void> {
    await Promise.all([this.journal.flush(), this.appsFile.flush()]);
  }
}
