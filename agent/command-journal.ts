// The command journal (commands.jsonl): one line per command start and per result, so a restarted agent runs a command
// once and answers it again from here.
//
//   command id ──begin()──▶ journaled, no result ──finish()──▶ journaled with result
//                              │ (agent dies here)                 │ (delivered again)
//                              ▼                                   ▼
//                       re-run by its idempotent handler     answered with replayed: true
//
// Each line is the command's whole entry after the change ({"id", kind, app, startedAt, runs, …, result?}), so a
// reload keeps the last line of each id and a line written twice does no harm. Entries older than 7 days, then the
// oldest beyond 10,000, are dropped in memory and left out at the next compaction (journal-log.ts). An older agent's
// commands.json is read once at open, compacted into commands.jsonl and removed.
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonFile } from './json-file.js';
import { JournalLog, parseJsonLines, readJsonLines, type JournalLogOptions } from './journal-log.js';

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

export const JOURNAL_FILE = 'commands.jsonl';
/** The whole-file journal of agents before the append-only one. */
export const LEGACY_JOURNAL_FILE = 'commands.json';
const JOURNAL_MAX_ENTRIES = 10_000;
const JOURNAL_MAX_AGE_MS = 7 * 24 * 3600_000;

/** What the open found, for the agent's log. */
export interface JournalLoad {
  /** Lines that did not parse or were not an entry (a torn last line is one). */
  skipped: number;
  /** Entries taken over from an older agent's commands.json. */
  migrated: number;
}

export class CommandJournal {
  private readonly entries = new Map<string, JournalEntry>();
  readonly log: JournalLog;
  load: JournalLoad = { skipped: 0, migrated: 0 };

  private constructor(dataDir: string, options: JournalLogOptions) {
    const entries = this.entries;
    const live = { get size() { return entries.size; }, lines: () => [...entries].map(([id, e]) => lineOf(id, e)) };
    this.log = new JournalLog(join(dataDir, JOURNAL_FILE), live, options);
  }

  /** Loads commands.jsonl (and an older agent's commands.json), and rewrites the file if it was torn, long or missing. */
  static async open(dataDir: string, options: JournalLogOptions = {}): Promise<CommandJournal> {
    const journal = new CommandJournal(dataDir, options);
    const file = await readJsonLines(journal.log.path);
    const skipped = file.skipped + journal.replay(file.records);
    // Corrupt legacy file: moved aside and read as missing, as before.
    const legacy = await new JsonFile<Record<string, JournalEntry>>(join(dataDir, LEGACY_JOURNAL_FILE)).read();
    // Both files: an older agent ran after this one (or this one died mid-migration); its entries are the newer.
    for (const [id, entry] of Object.entries(legacy ?? {})) if (isEntry(entry)) journal.entries.set(id, entry);
    journal.prune(Date.now());
    journal.load = { skipped, migrated: Object.keys(legacy ?? {}).length };
    journal.log.opened(file.records.length + file.skipped);
    // A torn line must not have appends after it; a missing file is created with its directory entry made durable.
    if (!file.exists || file.torn || skipped > 0 || legacy !== undefined || journal.log.tooLong()) await journal.log.compactNow();
    if (legacy !== undefined) await rm(join(dataDir, LEGACY_JOURNAL_FILE), { force: true });
    return journal;
  }

  get(id: string): JournalEntry | undefined {
    return this.entries.get(id);
  }

  /** Records that a command starts (one more run); durable when the promise resolves. */
  begin(id: string, kind: string, app: string, startedAt: number, edition?: string): Promise<void> {
    const known = this.entries.get(id);
    const runs = (known?.runs ?? 0) + 1;
    const durable = this.put(id, { kind, app, startedAt, runs, ...(edition ? { edition } : {}), ...(known?.resetHook ? { resetHook: known.resetHook } : {}) });
    this.prune(Date.now());
    return durable;
  }

  /** Records that a hard reset's hook starts; a no-op for an unknown id. */
  async markResetHook(id: string, bootId: string, startedAt: number): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    return this.put(id, { ...entry, resetHook: { bootId, startedAt } });
  }

  /** Records a command's result; durable when the promise resolves (the dispatcher sends the result after). */
  finish(id: string, result: StoredResult): Promise<void> {
    const entry = this.entries.get(id);
    return this.put(id, {
      kind: entry?.kind ?? 'unknown',
      app: entry?.app ?? '',
      startedAt: entry?.startedAt ?? result.startedUnixMs,
      runs: entry?.runs ?? 1,
      ...(entry?.edition ? { edition: entry.edition } : {}),
      ...(entry?.resetHook ? { resetHook: entry.resetHook } : {}),
      result,
    });
  }

  /** Every entry, in the order they were first journalled. */
  all(): IterableIterator<[string, JournalEntry]> {
    return this.entries.entries();
  }

  flush(): Promise<void> {
    return this.log.flush();
  }

  /** The state changes first: a compaction running before this line is written already holds it. */
  private put(id: string, entry: JournalEntry): Promise<void> {
    this.entries.set(id, entry);
    return this.log.append(lineOf(id, entry));
  }

  /** Applies loaded lines (the last line of an id wins); returns how many were not entries. */
  private replay(records: unknown[]): number {
    let bad = 0;
    for (const record of records) {
      const id = (record as { id?: unknown } | null)?.id;
      if (typeof id !== 'string' || !isEntry(record)) {
        bad++;
        continue;
      }
      const { id: _, ...entry } = record as JournalEntry & { id: string };
      this.entries.set(id, entry);
    }
    return bad;
  }

  /** Drops entries older than 7 days, then the oldest beyond 10,000 (Map order is insertion order). */
  private prune(now: number): void {
    for (const [id, entry] of this.entries) {
      if (now - entry.startedAt > JOURNAL_MAX_AGE_MS) this.entries.delete(id);
    }
    for (const id of this.entries.keys()) {
      if (this.entries.size <= JOURNAL_MAX_ENTRIES) break;
      this.entries.delete(id);
    }
  }
}

function lineOf(id: string, entry: JournalEntry): string {
  return JSON.stringify({ id, ...entry });
}

/** The fields every entry has; anything else in a line is a damaged line, skipped. */
function isEntry(value: unknown): value is JournalEntry {
  const e = value as Partial<JournalEntry> | null;
  return typeof e === 'object' && e !== null && typeof e.kind === 'string' && typeof e.app === 'string' && typeof e.startedAt === 'number' && typeof e.runs === 'number';
}

/** The journal of a data dir as a reader outside the agent sees it now (tests, tooling): id → entry; a torn line is skipped. */
export function readCommandJournal(dataDir: string): Record<string, JournalEntry> {
  const path = join(dataDir, JOURNAL_FILE);
  if (!existsSync(path)) return JSON.parse(readFileSync(join(dataDir, LEGACY_JOURNAL_FILE), 'utf8')) as Record<string, JournalEntry>;
  const out: Record<string, JournalEntry> = {};
  for (const record of parseJsonLines(readFileSync(path, 'utf8')).records) {
    const { id, ...entry } = record as JournalEntry & { id: string };
    if (typeof id === 'string' && isEntry(entry)) out[id] = entry;
  }
  return out;
}
