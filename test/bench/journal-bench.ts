// What the agent's command journal costs per command (a start and a result, each durable before it counts), as its
// history grows: the append-only commands.jsonl against the whole-file commands.json rewrite of older agents.
//
//   node dist/test/bench/journal-bench.js [--commands 10000] [--budget-s 15]
//
// Prints one JSON line per (journal, commands in flight). The old journal stops at the time budget: it rewrites every
// entry on every start and result, so its cost per command grows with the history (see usLast100).
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandJournal, JOURNAL_FILE, type JournalEntry, type StoredResult } from '../../agent/command-journal.js';
import { JsonFile } from '../../agent/json-file.js';

interface Journal {
  begin(id: string, now: number): Promise<void>;
  finish(id: string, result: StoredResult): Promise<void>;
  /** fsyncs so far (new journal: one per batch or compaction), and the file's size now. */
  figures(): { fsyncs?: number; compactions?: number; bytes: number };
}

/** The journal of agents before commands.jsonl: every change rewrites commands.json (temp, fsync, rename, fsync dir). */
function oldJournal(dataDir: string): Journal {
  const file = new JsonFile<Record<string, JournalEntry>>(join(dataDir, 'commands.json'));
  const entries = new Map<string, JournalEntry>();
  return {
    begin(id, now) {
      entries.set(id, { kind: 'healthCheck', app: 'shop', startedAt: now, runs: 1 });
      for (const key of entries.keys()) {
        if (entries.size <= 10_000) break;
        entries.delete(key);
      }
      return file.save(Object.fromEntries(entries));
    },
    finish(id, result) {
      entries.set(id, { ...entries.get(id)!, result });
      return file.save(Object.fromEntries(entries));
    },
    figures: () => ({ bytes: statSync(file.path).size }),
  };
}

async function newJournal(dataDir: string): Promise<Journal> {
  const journal = await CommandJournal.open(dataDir);
  return {
    begin: (id, now) => journal.begin(id, 'healthCheck', 'shop', now),
    finish: (id, result) => journal.finish(id, result),
    figures: () => ({ fsyncs: journal.log.stats.appends + journal.log.stats.compactions, compactions: journal.log.stats.compactions, bytes: statSync(join(dataDir, JOURNAL_FILE)).size }),
  };
}

/** Runs up to `count` commands, `inFlight` at a time, until the budget ends; µs per command overall and for the last 100. */
async function run(journal: Journal, count: number, inFlight: number, budgetMs: number) {
  const started = performance.now();
  const finishedAt: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count && performance.now() - started < budgetMs) {
      const id = `cmd-${next++}`;
      const at = Date.now();
      await journal.begin(id, at);
      await journal.finish(id, { ok: true, error: '', startedUnixMs: at, finishedUnixMs: Date.now(), activeEdition: '1.0' });
      finishedAt.push(performance.now());
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const done = finishedAt.length;
  const total = finishedAt[done - 1]! - started;
  const tail = finishedAt.slice(-101);
  const last100 = tail.length > 1 ? (tail[tail.length - 1]! - tail[0]!) / (tail.length - 1) : total / done;
  return { commands: done, usPerCommand: Math.round((total / done) * 1000), usLast100: Math.round(last100 * 1000), seconds: Math.round(total) / 1000 };
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`journal-bench: --${name} needs a positive number`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const count = flag('commands', 10_000);
  const budgetMs = flag('budget-s', 15) * 1000;
  const root = mkdtempSync(join(tmpdir(), 'fleetwave-journal-bench-'));
  try {
    for (const inFlight of [1, 32]) {
      for (const [name, make] of [
        ['commands.jsonl (append-only)', newJournal],
        ['commands.json (whole-file rewrite)', async (d: string) => oldJournal(d)],
      ] as const) {
        const dataDir = join(root, `${name.split(' ')[0]}-${inFlight}`);
        mkdirSync(dataDir);
        const journal = await make(dataDir);
        const figures = await run(journal, count, inFlight, budgetMs);
        console.log(JSON.stringify({ scenario: 'journal', journal: name, inFlight, ...figures, ...journal.figures() }));
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
