// The dispatcher's promises: a command whose start cannot be journalled does not run, and deadlines are counted on
// the agent's own clock from the time left the controller sends, whatever the two wall clocks say.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import type { Command, CommandResult } from '../../proto/gen/fleetwave/v1/agent.js';
import type { Instance } from '../instance.js';
import { compileAgentOptions } from '../options.js';
import { JOURNAL_FILE } from '../command-journal.js';
import { AgentState } from '../state.js';
import { tempDir, waitFor } from '../test-support.js';
import { CommandDispatcher, localDeadline } from './dispatcher.js';

const logger = createLogger({ name: 'dispatcher-test', level: 'silent' });
const dir = tempDir('dispatcher');
afterAll(() => dir.remove());

/** An instance whose StopApp records that it ran and takes `stopMs` (Infinity: never ends). */
function fakeInstance(stopMs: number) {
  const ran: string[] = [];
  const instance = {
    app: 'shop',
    activeEdition: '1.0',
    stop: () => {
      ran.push('stop');
      return stopMs === Infinity ? new Promise<void>(() => {}) : new Promise<void>((r) => setTimeout(r, stopMs));
    },
    report: async () => undefined,
  } as unknown as Instance;
  return { instance, ran };
}

async function dispatcher(name: string, stopMs: number) {
  const state = await AgentState.open(join(dir.path, name));
  const { instance, ran } = fakeInstance(stopMs);
  const results: CommandResult[] = [];
  const d = new CommandDispatcher({
    state,
    instances: new Map([['shop', instance]]),
    events: { publish: () => {} },
    options: compileAgentOptions({ bootId: 'b', dataDir: join(dir.path, name) }),
    logger,
    send: (r) => results.push(r),
  });
  return { d, state, ran, results };
}

const stop = (commandId: string, extra: Partial<Command> = {}): Command => ({ commandId, app: 'shop', releaseId: 'r', deadlineUnixMs: 0, timeoutMs: 0, stopApp: {}, ...extra });

describe('CommandDispatcher', () => {
  it('does not run a command whose start cannot be journalled, and says why', async () => {
    const { d, ran, results } = await dispatcher('journal', 0);
    // A directory where the journal file goes: the append fails, as on a full or read-only disk.
    rmSync(join(dir.path, 'journal', JOURNAL_FILE), { force: true });
    mkdirSync(join(dir.path, 'journal', JOURNAL_FILE));
    d.dispatch(stop('c1'));
    const result = await waitFor('result of c1', () => results.find((r) => r.commandId === 'c1'));
    expect(ran).toEqual([]);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^stopApp not run: the agent could not journal its start \(.+\)$/);
  });

  it('counts the time left on its own clock when the wall clocks disagree by minutes', async () => {
    const { d, ran, results } = await dispatcher('skew-ok', 50);
    // The controller's clock is 10 minutes behind ours: its absolute deadline has "passed" here already.
    d.dispatch(stop('c2', { deadlineUnixMs: Date.now() - 600_000, timeoutMs: 5_000 }));
    const ok = await waitFor('result of c2', () => results.find((r) => r.commandId === 'c2'));
    expect(ok).toMatchObject({ ok: true });
    expect(ran).toEqual(['stop']);
  });

  it('gives up after the time left even when the controller clock is minutes ahead', async () => {
    const { d, results } = await dispatcher('skew-late', Infinity);
    const sent = Date.now();
    // Its absolute deadline lies 10 minutes in our future; the time left is 300 ms.
    d.dispatch(stop('c3', { deadlineUnixMs: sent + 600_000, timeoutMs: 300 }));
    const failed = await waitFor('result of c3', () => results.find((r) => r.commandId === 'c3'), 5_000);
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/deadline passed after \d+ ms of stopApp/);
    expect(Date.now() - sent).toBeLessThan(5_000);
  });

  it('computes the local deadline from timeout_ms, falling back to the absolute deadline of an older controller', () => {
    expect(localDeadline({ timeoutMs: 2_000, deadlineUnixMs: 5 }, 1_000_000)).toBe(1_002_000);
    expect(localDeadline({ timeoutMs: 0, deadlineUnixMs: 5 }, 1_000_000)).toBe(5);
    expect(localDeadline({ timeoutMs: 0, deadlineUnixMs: 0 }, 1_000_000)).toBe(0);
  });
});
