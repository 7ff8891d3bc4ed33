// The agent's durable state: the journal and app records survive a reopen; writes are atomic and coalesced.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCommandJournal } from './command-journal.js';
import { AgentState } from './state.js';
import { tempDir } from './test-support.js';

const dir = tempDir('state');
afterAll(() => dir.remove());

describe('AgentState', () => {
  it('keeps journaled commands and results across a reopen', async () => {
    const path = join(dir.path, 'a');
    const state = await AgentState.open(path);
    await state.beginCommand('c1', 'startApp', 'shop', 1000);
    await state.beginCommand('c2', 'quiesce', 'shop', Date.now());
    await state.finishCommand('c2', { ok: true, error: '', startedUnixMs: 1, finishedUnixMs: 2, activeEdition: '1.0' });
    await state.updateApp('shop', { activeEdition: '1.0', desired: 'running' });
    const again = await AgentState.open(path);
    // c1 is older than 7 days and was pruned when c2 began.
    expect(again.command('c1')).toBeUndefined();
    expect(again.command('c2')).toMatchObject({ kind: 'quiesce', result: { ok: true, activeEdition: '1.0' } });
    expect(again.app('shop')).toMatchObject({ activeEdition: '1.0', previousEdition: '', desired: 'running', keptEditions: [] });
    expect(again.app('other')).toMatchObject({ activeEdition: '', desired: 'stopped' });
    expect(readdirSync(path).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('coalesces concurrent writes and ends with the last value', async () => {
    const path = join(dir.path, 'b');
    const state = await AgentState.open(path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => state.beginCommand(`c${i}`, 'healthCheck', 'shop', Date.now())));
    const journal = readCommandJournal(path);
    expect(Object.keys(journal)).toHaveLength(50);
  });

  it('moves a corrupt file aside and starts empty', async () => {
    const path = join(dir.path, 'c');
    await AgentState.open(path);
    writeFileSync(join(path, 'apps.json'), '{"shop": ');
    const state = await AgentState.open(path);
    expect(state.app('shop').activeEdition).toBe('');
    expect(readdirSync(path).some((n) => n.startsWith('apps.json.corrupt-'))).toBe(true);
  });

  it('finds the unfinished switch a dying agent left: the newest RestartApp/StartApp without a result, with its edition', async () => {
    const state = await AgentState.open(join(dir.path, 'd'));
    const now = Date.now();
    await state.beginCommand('r1', 'restartApp', 'shop', now - 2000, '2.0');
    await state.finishCommand('r1', { ok: true, error: '', startedUnixMs: now - 2000, finishedUnixMs: now - 1000, activeEdition: '2.0' });
    expect(state.unfinishedSwitch('shop')).toBeUndefined();
    await state.beginCommand('q1', 'quiesce', 'shop', now - 500);
    await state.beginCommand('r2', 'restartApp', 'shop', now, '3.0');
    await state.beginCommand('r3', 'restartApp', 'billing', now, '9.0');
    const again = await AgentState.open(join(dir.path, 'd'));
    expect(again.unfinishedSwitch('shop')).toMatchObject({ id: 'r2', kind: 'restartApp', edition: '3.0' });
    expect(again.command('r1')).toMatchObject({ edition: '2.0', result: { ok: true } });
  });
});
