// The agent's durable state: the command journal (commands.json) and per-app records (apps.json).
//
//   command id ──begin()──▶ journaled, no result ──finish()──▶ journaled with result
//                              │ (agent dies here)                 │ (delivered again)
//                              ▼                                   ▼
//                       re-run by its idempotent handler     answered with replayed: true
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { JsonFile } from './json-file.js';

/** What a finished command answered; replayed as is when the id comes again. */
export interface StoredResult {
  ok: boolean;
  error: string;
  startedUnixMs: number;
  finishedUnixMs: number;
  activeEdition: string;
  /** RestartApp: the update order used (start-first, stop-first). */
  updateOrder?: string;
}

export interface JournalEntry {
  kind: string;
  app: string;
  startedAt: number;
  /** How many times the handler began: more than 1 only when the agent died mid-command and it was re-delivered. */
  runs: number;
  /** Absent while the command runs, or when the agent died while it ran. */
  result?: StoredResult;
  /** RestartApp/StartApp: the edition the command moves the app to, restored first by an agent that died mid-command. */
  edition?: string;
  /** HardResetServer: the reset hook was started (in this boot), so a resumed reset does not run it again. */
  resetHook?: { bootId: string; startedAt: number };
}

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

const JOURNAL_MAX_ENTRIES = 10_000;
const JOURNAL_MAX_AGE_MS = 7 * 24 * 3600_000;

export function emptyAppRecord(): AppRecord {
  return { activeEdition: '', previousEdition: '', desired: 'stopped', keptEditions: [] };
}

export class AgentState {
  private constructor(
    readonly dataDir: string,
    private readonly journalFile: JsonFile<Record<string, JournalEntry>>,
    private readonly appsFile: JsonFile<Record<string, AppRecord>>,
    private readonly journal: Map<string, JournalEntry>,
    private readonly apps: Map<string, AppRecord>,
  ) {}

  static async open(dataDir: string): Promise<AgentState> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const journalFile = new JsonFile<Record<string, JournalEntry>>(join(dataDir, 'commands.json'));
    const appsFile = new JsonFile<Record<string, AppRecord>>(join(dataDir, 'apps.json'));
    const journal = new Map(Object.entries((await journalFile.read()) ?? {}));
    const apps = new Map(Object.entries((await appsFile.read()) ?? {}));
    return new AgentState(dataDir, journalFile, appsFile, journal, apps);
  }

  /** Directory of one app: editions, downloads, app.log. */
  appDir(app: string): string {
    return join(this.dataDir, 'apps', app);
  }

  command(id: string): JournalEntry | undefined {
    return this.journal.get(id);
  }

  /** Records that a command starts; durable before it runs. */
  async beginCommand(id: string, kind: string, app: string, startedAt: number, edition?: string): Promise<void> {
    const known = this.journal.get(id);
    const runs = (known?.runs ?? 0) + 1;
    this.journal.set(id, { kind, app, startedAt, runs, ...(edition ? { edition } : {}), ...(known?.resetHook ? { resetHook: known.resetHook } : {}) });
    this.prune(Date.now());
    await this.journalFile.save(Object.fromEntries(this.journal));
  }

  /** Records that a hard reset's hook starts; durable before the hook may reboot the host. */
  async markResetHook(id: string, bootId: string, startedAt: number): Promise<void> {
    const entry = this.journal.get(id);
    if (!entry) return;
    this.journal.set(id, { ...entry, resetHook: { bootId, startedAt } });
    await this.journalFile.save(Object.fromEntries(this.journal));
  }

  /** Records a command's result; durable before the result is sent. */
  async finishCommand(id: string, result: StoredResult): Promise<void> {
    const entry = this.journal.get(id);
    this.journal.set(id, {
      kind: entry?.kind ?? 'unknown',
      app: entry?.app ?? '',
      startedAt: entry?.startedAt ?? result.startedUnixMs,
      runs: entry?.runs ?? 1,
      ...(entry?.edition ? { edition: entry.edition } : {}),
      ...(entry?.resetHook ? { resetHook: entry.resetHook } : {}),
      result,
    });
    await this.journalFile.save(Object.fromEntries(this.journal));
  }

  /** The newest unfinished RestartApp/StartApp of `app` (the agent died while it ran), with the edition it moved to. */
  unfinishedSwitch(app: string): (JournalEntry & { id: string; edition: string }) | undefined {
    let found: (JournalEntry & { id: string; edition: string }) | undefined;
    for (const [id, entry] of this.journal) {
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
    await Promise.all([this.journalFile.flush(), this.appsFile.flush()]);
  }

  /** Drops entries older than 7 days, then the oldest beyond 10,000 (Map order is insertion order). */
  private prune(now: number): void {
    for (const [id, entry] of this.journal) {
      if (now - entry.startedAt > JOURNAL_MAX_AGE_MS) this.journal.delete(id);
    }
    for (const id of this.journal.keys()) {
      if (this.journal.size <= JOURNAL_MAX_ENTRIES) break;
      this.journal.delete(id);
    }
  }
}
