// The append-only command journal on real files: reload, duplicates, a torn last line, compaction, migration from
// commands.json, and one fsync per batch of lines (counted through the file operations, never by timing).
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CommandJournal, JOURNAL_FILE, LEGACY_JOURNAL_FILE, readCommandJournal, type StoredResult } from './command-journal.js';
import { nodeJournalIo, type JournalIo } from './journal-log.js';
import { tempDir } from './test-support.js';

const dir = tempDir('journal');
afterAll(() => dir.remove());
let n = 0;
const fresh = () => join(dir.path, `j${n++}`);
const lines = (dataDir: string) => readFileSync(join(dataDir, JOURNAL_FILE), 'utf8').split('\n').filter((l) => l);
const ok = (at: number, edition = '1.0'): StoredResult => ({ ok: true, error: '', startedUnixMs: at, finishedUnixMs: at + 1, activeEdition: edition });

/** Real file operations, counted; `hold()` keeps the next append waiting until the returned release is called. */
function countingIo() {
  const calls = { append: 0, replace: 0, failNext: false };
  let held: Promise<void> | undefined;
  const io: JournalIo = {
    async append(path, data) {
      calls.append++;
      if (calls.failNext) {
        calls.failNext = false;
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      }
      if (held) await held;
      return nodeJournalIo.append(path, data);
    },
    replace(path, data) {
      calls.replace++;
      return nodeJournalIo.replace(path, data);
    },
  };
  const hold = () => {
    let release!: () => void;
    held = new Promise<void>((r) => (release = r));
    return () => {
      held = undefined;
      release();
    };
  };
  return { io, calls, hold };
}

async function open(dataDir: string, options: Parameters<typeof CommandJournal.open>[1] = {}) {
  mkdirSync(dataDir, { recursive: true });
  return CommandJournal.open(dataDir, options);
}

describe('CommandJournal', () => {
  it('appends one line per start and per result, and a reopen sees the same entries', async () => {
    const path = fresh();
    const now = Date.now();
    const journal = await open(path);
    await journal.begin('c1', 'restartApp', 'shop', now, '2.0');
    await journal.finish('c1', ok(now, '2.0'));
    await journal.begin('c2', 'quiesce', 'shop', now);
    expect(lines(path)).toHaveLength(3);
    const again = await open(path);
    expect(again.get('c1')).toEqual({ kind: 'restartApp', app: 'shop', startedAt: now, runs: 1, edition: '2.0', result: ok(now, '2.0') });
    expect(again.get('c2')).toEqual({ kind: 'quiesce', app: 'shop', startedAt: now, runs: 1 });
    expect([...again.all()].map(([id]) => id)).toEqual(['c1', 'c2']);
    expect(readCommandJournal(path)).toEqual(Object.fromEntries(again.all()));
  });

  it('keeps the last of duplicate results and counts a re-delivered start as a second run', async () => {
    const path = fresh();
    const now = Date.now();
    const journal = await open(path);
    await journal.begin('c1', 'stopApp', 'shop', now);
    await journal.finish('c1', ok(now));
    await journal.finish('c1', { ...ok(now), ok: false, error: 'second' });
    await journal.begin('c2', 'restartApp', 'shop', now, '3.0');
    // The agent died here; the re-delivered command begins again.
    const restarted = await open(path);
    await restarted.begin('c2', 'restartApp', 'shop', now + 5, '3.0');
    const again = await open(path);
    expect(again.get('c1')).toMatchObject({ runs: 1, result: { ok: false, error: 'second' } });
    expect(again.get('c2')).toMatchObject({ runs: 2, startedAt: now + 5, edition: '3.0' });
    expect(again.get('c2')?.result).toBeUndefined();
  });

  it('ignores a torn last line (agent killed mid-write) and a damaged line, and appends cleanly after them', async () => {
    const path = fresh();
    const now = Date.now();
    const journal = await open(path);
    await journal.begin('c1', 'stopApp', 'shop', now);
    await journal.finish('c1', ok(now));
    appendFileSync(join(path, JOURNAL_FILE), 'not json at all\n{"id":"c9","kind":"stopApp"}\n{"id":"c2","kind":"sto');
    const again = await open(path);
    expect(again.load).toEqual({ skipped: 3, migrated: 0 });
    expect(again.get('c1')).toMatchObject({ result: { ok: true } });
    expect(again.get('c2')).toBeUndefined();
    expect(again.get('c9')).toBeUndefined();
    // Rewritten at open: only the live entry, ending in a newline, so the next line is not glued to a fragment.
    expect(lines(path).map((l) => JSON.parse(l).id)).toEqual(['c1']);
    await again.begin('c3', 'healthCheck', 'shop', now);
    const third = await open(path);
    expect(third.load.skipped).toBe(0);
    expect(third.get('c3')).toMatchObject({ kind: 'healthCheck', runs: 1 });
  });

  it('compacts to exactly the live entries and keeps the file within its bound', async () => {
    const path = fresh();
    const now = Date.now();
    const { io, calls } = countingIo();
    const journal = await open(path, { io, compactMinLines: 40, compactFactor: 2 });
    let most = 0;
    for (let i = 0; i < 300; i++) {
      // Ten live commands answered over and over, and as many more from 8 days ago that are pruned at once.
      await journal.begin(`old${i}`, 'healthCheck', 'shop', now - 8 * 24 * 3600_000);
      await journal.finish(`c${i % 10}`, ok(now + i));
      most = Math.max(most, lines(path).length);
    }
    expect(calls.replace).toBeGreaterThan(5);
    expect(most).toBeLessThanOrEqual(40);
    await journal.log.compactNow();
    const ids = lines(path).map((l) => JSON.parse(l).id);
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `c${i}`));
    expect(readCommandJournal(path)).toEqual(Object.fromEntries(journal.all()));
    const again = await open(path);
    expect(again.get('c3')).toMatchObject({ result: { finishedUnixMs: now + 294 } });
    expect(statSync(join(path, JOURNAL_FILE)).size).toBeLessThan(3_000);
  });

  it('takes over an older agent’s commands.json once, and removes it', async () => {
    const path = fresh();
    const now = Date.now();
    mkdirSync(path, { recursive: true });
    const legacy = {
      r1: { kind: 'restartApp', app: 'shop', startedAt: now - 10, runs: 1, edition: '2.0' },
      q1: { kind: 'quiesce', app: 'shop', startedAt: now - 20, runs: 2, result: ok(now - 20) },
      h1: { kind: 'hardResetServer', app: 'shop', startedAt: now - 30, runs: 1, resetHook: { bootId: 'b1', startedAt: now - 29 } },
    };
    writeFileSync(join(path, LEGACY_JOURNAL_FILE), JSON.stringify(legacy, null, 1));
    const journal = await open(path);
    expect(journal.load).toEqual({ skipped: 0, migrated: 3 });
    expect(Object.fromEntries(journal.all())).toEqual(legacy);
    expect(existsSync(join(path, LEGACY_JOURNAL_FILE))).toBe(false);
    expect(lines(path)).toHaveLength(3);
    const again = await open(path);
    expect(again.load.migrated).toBe(0);
    expect(Object.fromEntries(again.all())).toEqual(legacy);
  });

  it('lets a commands.json written after the journal (an older agent ran in between) win for its ids', async () => {
    const path = fresh();
    const now = Date.now();
    const journal = await open(path);
    await journal.begin('c1', 'stopApp', 'shop', now);
    await journal.begin('c2', 'stopApp', 'shop', now);
    writeFileSync(join(path, LEGACY_JOURNAL_FILE), JSON.stringify({ c2: { kind: 'stopApp', app: 'shop', startedAt: now, runs: 1, result: ok(now) } }));
    const again = await open(path);
    expect(again.get('c1')).toMatchObject({ runs: 1 });
    expect(again.get('c1')?.result).toBeUndefined();
    expect(again.get('c2')).toMatchObject({ result: { ok: true } });
  });

  it('shares one fsync among the lines of one tick, and among those that arrive while a write is under way', async () => {
    const path = fresh();
    const now = Date.now();
    const { io, calls, hold } = countingIo();
    const journal = await open(path, { io });
    expect(calls).toMatchObject({ append: 0, replace: 1 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => journal.begin(`c${i}`, 'healthCheck', 'shop', now)));
    expect(calls.append).toBe(1);
    for (let i = 0; i < 5; i++) await journal.finish(`c${i}`, ok(now));
    expect(calls.append).toBe(6);

    // One write held on the disk: ten results arrive meanwhile, and are written together after it.
    const release = hold();
    let firstDone = false;
    const first = journal.finish('c10', ok(now)).then(() => (firstDone = true));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 10 }, (_, i) => journal.finish(`c${20 + i}`, ok(now)));
    expect(calls.append).toBe(7);
    // A result is not acknowledged before its line is durable.
    expect(firstDone).toBe(false);
    release();
    await Promise.all([first, ...rest]);
    expect(calls.append).toBe(8);
    expect(lines(path)).toHaveLength(50 + 5 + 1 + 10);
  });

  it('rejects the lines of a failed write, and recovers by rewriting the file on the next one', async () => {
    const path = fresh();
    const now = Date.now();
    const { io, calls } = countingIo();
    const journal = await open(path, { io });
    await journal.begin('c1', 'stopApp', 'shop', now);
    calls.failNext = true;
    await expect(journal.begin('c2', 'stopApp', 'shop', now)).rejects.toThrow(/no space left/);
    await journal.finish('c2', { ...ok(now), ok: false, error: 'stopApp not run' });
    expect(calls.replace).toBe(2);
    const again = await open(path);
    expect(again.get('c1')).toMatchObject({ runs: 1 });
    expect(again.get('c2')).toMatchObject({ result: { ok: false } });
  });
});
