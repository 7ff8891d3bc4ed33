// An append-only JSON-lines file: group-committed appends (one fsync per batch) and compaction to the live records.
//
//   append(line) ──▶ pending ──(next macrotask: one write + one fdatasync for the whole batch)──▶ durable, promise resolves
//                                      │ file holds more than max(minLines, factor × live) lines
//                                      ▼
//                    compact: live records → temp file, fsync, rename over, fsync dir
//
// A line is written whole or torn only at the end of the file (the agent killed mid-write); `readJsonLines` skips a
// line that does not parse, and the owner compacts at open so later appends never follow a fragment. A failed append
// leaves the file in doubt, so the next batch replaces it with a compaction instead of appending.
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { writeAtomically } from './json-file.js';

/** The file operations the log needs; tests wrap `nodeJournalIo` to count fsyncs or hold a write. */
export interface JournalIo {
  /** Appends to the existing file (never creates it) and makes the bytes durable: one fdatasync. */
  append(path: string, data: string): Promise<void>;
  /** Replaces the file atomically: temp file, fsync, rename over `path`, fsync the directory. */
  replace(path: string, data: string): Promise<void>;
}

export const nodeJournalIo: JournalIo = {
  async append(path, data) {
    // No O_CREAT: a journal that vanished is recreated by a compaction, which also makes its directory entry durable.
    const file = await open(path, constants.O_WRONLY | constants.O_APPEND);
    try {
      await file.writeFile(data);
      await file.datasync();
    } finally {
      await file.close();
    }
  },
  replace: writeAtomically,
};

/** What a JSON-lines file held: its parsed lines, and how many lines did not parse (a torn last line, or damage). */
export interface JsonLines {
  /** Missing file: false (nothing to read). */
  exists: boolean;
  records: unknown[];
  /** Lines that were not JSON (skipped, never fatal). */
  skipped: number;
  /** The file does not end in a newline: its last line was torn (skipped if it did not parse). */
  torn: boolean;
}

export async function readJsonLines(path: string): Promise<JsonLines> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false, records: [], skipped: 0, torn: false };
    throw err;
  }
  return { exists: true, ...parseJsonLines(text) };
}

export function parseJsonLines(text: string): Omit<JsonLines, 'exists'> {
  const records: unknown[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      skipped++;
    }
  }
  return { records, skipped, torn: text.length > 0 && !text.endsWith('\n') };
}

export interface JournalLogOptions {
  io?: JournalIo;
  /** Never compact below this many lines in the file. */
  compactMinLines?: number;
  /** Compact when the file holds more than this many lines per live record (so appends cost O(1) amortised). */
  compactFactor?: number;
}

/** The owner's state: what a compaction writes. */
export interface LiveRecords {
  /** How many records are live (cheap: read once per batch). */
  readonly size: number;
  /** Every live record as one JSON line (no newline), in the order a reload should rebuild them. */
  lines(): string[];
}

export class JournalLog {
  private readonly io: JournalIo;
  private readonly compactMinLines: number;
  private readonly compactFactor: number;
  /** Lines waiting for the next batch, each with the callbacks of its append. */
  private pending: Array<{ line: string; done: (err?: Error) => void }> = [];
  /** The running batch loop; undefined when idle. */
  private writing: Promise<void> | undefined;
  /** The next write must rewrite the file (a failed append, a torn or missing file) instead of appending. */
  private mustCompact = false;
  /** Lines in the file now (live records after a compaction plus appends since). */
  private fileLines = 0;
  /** Batches written and compactions done, for tests and the benchmark. */
  readonly stats = { appends: 0, compactions: 0 };

  constructor(
    readonly path: string,
    private readonly live: LiveRecords,
    options: JournalLogOptions = {},
  ) {
    this.io = options.io ?? nodeJournalIo;
    this.compactMinLines = options.compactMinLines ?? 1_000;
    this.compactFactor = options.compactFactor ?? 2;
  }

  /** After a load: how many lines the file holds. */
  opened(fileLines: number): void {
    this.fileLines = fileLines;
  }

  /** The file holds more lines than the bound for the live records: the next write compacts. */
  tooLong(adding = 0): boolean {
    const bound = Math.max(this.compactMinLines, this.compactFactor * this.live.size);
    return this.fileLines + adding > bound;
  }

  /** Rewrites the file to the live records now (at open: a torn line, a migration, a long file). */
  compactNow(): Promise<void> {
    this.mustCompact = true;
    return this.append(undefined);
  }

  /** Resolves once `line` (one JSON value, no newline) is durable, together with every line appended in the same tick. */
  append(line: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line: line ?? '', done: (err) => (err ? reject(err) : resolve()) });
      if (!this.writing) this.writing = this.loop();
    });
  }

  /** Resolves when no write is pending. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async loop(): Promise<void> {
    // One macrotask of grace: every append of the current tick (Promise.all of many) joins this batch.
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      // Cleared here, not in a finally: a waiter resolved below may append before a finally would run.
      if (this.pending.length === 0) return void (this.writing = undefined);
      const batch = this.pending;
      this.pending = [];
      const lines = batch.map((p) => p.line).filter((l) => l);
      let error: Error | undefined;
      try {
        if (this.mustCompact || this.tooLong(lines.length)) await this.compact();
        else await this.appendLines(lines);
      } catch (err) {
        error = err as Error;
        this.mustCompact = true;
      }
      for (const p of batch) p.done(error);
    }
  }

  private async appendLines(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await this.io.append(this.path, lines.map((l) => `${l}\n`).join(''));
    this.stats.appends++;
    this.fileLines += lines.length;
  }

  /** The live state already holds every pending line's change (state changes before it appends), so it replaces them. */
  private async compact(): Promise<void> {
    const lines = this.live.lines();
    await this.io.replace(this.path, lines.map((l) => `${l}\n`).join(''));
    this.stats.compactions++;
    this.fileLines = lines.length;
    this.mustCompact = false;
  }
}
