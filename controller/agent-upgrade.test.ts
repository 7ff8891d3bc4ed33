// The agent upgrade coordinator against a real SQLite file: batches, results, Hellos, deadlines and a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { Command, type CommandResult, type Hello } from '../proto/gen/fleetwave/v1/agent.js';
import { AgentUpgrades } from './agent-upgrade.js';
import { AGENT_APP } from './domain/agent-upgrade.js';
import type { PendingCommand } from './domain/ports.js';
import { Store } from './store/store.js';

const logger = createLogger({ name: 'agent-upgrade-test', level: 'silent' });
let dir: string;
let store: Store;
let clock: number;
let sent: PendingCommand[];

function hello(agentId: string, version: string, extra: Partial<Hello> = {}): Hello {
  return {
    agentId,
    host: agentId,
    group: agentId.startsWith('w') ? 'west' : 'east',
    labels: {},
    bootId: 'b',
    version,
    instances: [],
    sentUnixMs: clock,
    eventPublicKey: Buffer.alloc(0),
    advertiseAddress: '',
    upgradeFailure: undefined,
    ...extra,
  };
}

/** What the agent service does on a Hello: the agent row, then the coordinator. */
function connect(u: AgentUpgrades, h: Hello): void {
  store.markAgentConnected({ agentId: h.agentId, host: h.host, group: h.group, labels: {}, bootId: h.bootId, version: h.version, instances: [] }, clock);
  u.onHello(h);
}

let ids = 0;
function coordinator(): AgentUpgrades {
  const u = new AgentUpgrades({ store, sink: { deliver: (c) => sent.push(...c) }, logger, now: () => clock, newId: () => (ids++ === 0 ? 'test' : `test${ids}`) });
  u.start();
  return u;
}

const ok = (commandId: string): CommandResult => ({ commandId, ok: true, error: '', replayed: false, startedUnixMs: 0, finishedUnixMs: 0, activeEdition: '', instance: undefined, updateOrder: '' });
const statuses = (u: AgentUpgrades) => Object.fromEntries(u.get('').targets.map((t) => [t.agentId, t.status]));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-upgrade-'));
  store = Store.open(join(dir, 'db'));
  clock = 1_000;
  sent = [];
  ids = 0;
  store.createApp({ name: AGENT_APP, startCommand: ['x'], env: {}, portEnv: 'PORT', healthPath: '/', stopTimeoutMs: 1, createdUnixMs: 1 });
  store.installEdition({ app: AGENT_APP, name: '0.3.0', description: '', url: 'http://c/artifacts/x', sha256: 'a'.repeat(64), size: 10, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  for (const id of ['e1', 'e2', 'w1']) store.markAgentConnected({ agentId: id, host: id, group: id.startsWith('w') ? 'west' : 'east', labels: {}, bootId: 'b', version: '0.1.0', instances: [] }, 1);
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent upgrade coordinator', () => {
  it('sends one batch at a time and ends upgraded when every agent comes back with the version', () => {
    const u = coordinator();
    const upgrade = u.create({ version: '0.3.0', batches: 3, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops');
    expect(upgrade).toMatchObject({ id: 'u-test', status: 'upgrading', batches: 3, currentBatch: 1 });
    expect(sent.map((c) => c.agentId)).toEqual(['e1']);
    const command = Command.decode(sent[0]!.payload);
    expect(command.upgradeAgent).toEqual({ version: '0.3.0', url: 'http://c/artifacts/x', sha256: 'a'.repeat(64), size: 10 });
    expect(command.app).toBe('');

    expect(u.onResult('e1', ok(sent[0]!.commandId))).toBe(true);
    expect(statuses(u)).toEqual({ e1: 'restarting', e2: 'pending', w1: 'pending' });
    connect(u, hello('e1', '0.3.0'));
    expect(sent.map((c) => c.agentId)).toEqual(['e1', 'e2']);
    // The result lost with the old process: the Hello alone completes the agent.
    connect(u, hello('e2', '0.3.0'));
    expect(sent.map((c) => c.agentId)).toEqual(['e1', 'e2', 'w1']);
    connect(u, hello('w1', '0.3.0'));
    expect(u.get('').upgrade).toMatchObject({ status: 'upgraded', currentBatch: 3 });
    expect(store.pendingCommandsForAgent('e2')).toEqual([]);
    expect(u.onResult('e1', ok('release-command'))).toBe(false);
  });

  it('a failed agent fails the upgrade with its reason; agents not yet sent are skipped', () => {
    const u = coordinator();
    u.create({ version: '0.3.0', batches: 3, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops');
    u.onResult('e1', ok(sent[0]!.commandId));
    connect(u, hello('e1', '0.1.0', { upgradeFailure: { version: '0.3.0', reason: 'version 0.3.0 exited (code 1) before it reached the controller', failedUnixMs: clock } }));
    const { upgrade, targets } = u.get('');
    expect(upgrade.status).toBe('failed');
    expect(upgrade.message).toMatch(/^agent e1: rolled back to 0\.1\.0: version 0\.3\.0 exited/);
    expect(targets.map((t) => t.status)).toEqual(['failed', 'skipped', 'skipped']);
    expect(sent).toHaveLength(1);
    expect(() => u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: ['west'], timeoutMs: 0 }, 'ops')).not.toThrow();
  });

  it('a stale rollback report from before the command does not fail the agent', () => {
    const u = coordinator();
    u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: ['east'], timeoutMs: 0 }, 'ops');
    connect(u, hello('e1', '0.1.0', { upgradeFailure: { version: '0.3.0', reason: 'old', failedUnixMs: clock - 60_000 } }));
    expect(statuses(u)).toEqual({ e1: 'sent', e2: 'sent' });
  });

  it('an agent that never comes back fails at the deadline', async () => {
    const u = coordinator();
    u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: ['west'], timeoutMs: 20 }, 'ops');
    clock += 21;
    // The timer runs on the real clock; the deadline check reads the test clock.
    await expect.poll(() => u.get('').upgrade.status, { timeout: 2_000 }).toBe('failed');
    expect(u.get('').targets[0]).toMatchObject({ status: 'failed', error: 'no answer within 20ms to stage the package' });
    expect(store.pendingCommandsForAgent('w1')).toEqual([]);
    u.stop();
  });

  it('a restarted controller resumes from the tables and never sends an agent its upgrade twice', () => {
    const first = coordinator();
    first.create({ version: '0.3.0', batches: 2, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops');
    first.stop();
    expect(sent.map((c) => c.agentId)).toEqual(['e1', 'e2']);
    // The new controller: the outbox re-sends the same command ids on Hello; the coordinator sends nothing new.
    const second = coordinator();
    expect(store.pendingCommandsForAgent('e1').map((c) => c.commandId)).toEqual([sent[0]!.commandId]);
    connect(second, hello('e1', '0.3.0'));
    connect(second, hello('e2', '0.3.0'));
    expect(sent.map((c) => c.agentId)).toEqual(['e1', 'e2', 'w1']);
    connect(second, hello('e1', '0.3.0'));
    expect(sent).toHaveLength(3);
    second.stop();
  });

  it('a cancel mid-batch skips the agents not yet sent; those in flight finish on their own, upgraded or at their deadline', async () => {
    const u = coordinator();
    // e1 and e2 in batch 1, w1 in batch 2.
    u.create({ version: '0.3.0', batches: 2, batchSize: 0, groups: [], timeoutMs: 50 }, 'ops');
    u.onResult('e1', ok(sent[0]!.commandId));
    expect(statuses(u)).toEqual({ e1: 'restarting', e2: 'sent', w1: 'pending' });

    const cancelled = u.cancel('u-test', 'alice', 'wrong build');
    expect(cancelled).toMatchObject({ status: 'cancelled', message: 'cancelled by alice: wrong build' });
    expect(statuses(u)).toEqual({ e1: 'restarting', e2: 'sent', w1: 'skipped' });
    expect(store.history(AGENT_APP).at(-1)).toMatchObject({ actor: 'alice', action: 'agent-upgrade-cancel', releaseId: 'u-test', comment: 'wrong build', result: 'ok' });

    // e1 comes back upgraded: its target moves, the upgrade stays cancelled and no batch follows.
    connect(u, hello('e1', '0.3.0'));
    expect(statuses(u)).toEqual({ e1: 'upgraded', e2: 'sent', w1: 'skipped' });
    expect(u.get('').upgrade.status).toBe('cancelled');
    expect(sent.map((c) => c.agentId)).toEqual(['e1', 'e2']);
    // No new upgrade while e2 may still act on the cancelled one's command.
    expect(() => u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: [], timeoutMs: 50 }, 'ops')).toThrow(/agent e2 is still sent for agent upgrade u-test; start a new upgrade once it comes back/);
    // e2 never answers: its deadline fails it, the upgrade keeps its status and message.
    clock += 51;
    await expect.poll(() => statuses(u).e2, { timeout: 2_000 }).toBe('failed');
    expect(u.get('').upgrade).toMatchObject({ status: 'cancelled', message: 'cancelled by alice: wrong build' });
    expect(store.pendingCommandsForAgent('e2')).toEqual([]);
    expect(store.pendingCommandsForAgent('w1')).toEqual([]);
    u.stop();
  });

  it('a cancelled upgrade stays cancelled across a controller restart; a result after it moves only the target', () => {
    const first = coordinator();
    first.create({ version: '0.3.0', batches: 2, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops');
    first.cancel('', 'ops', '');
    first.stop();
    const second = coordinator();
    expect(second.get('').upgrade).toMatchObject({ status: 'cancelled', message: 'cancelled by ops' });
    second.onResult('e1', ok(sent[0]!.commandId));
    connect(second, hello('e2', '0.3.0'));
    expect(statuses(second)).toEqual({ e1: 'restarting', e2: 'upgraded', w1: 'skipped' });
    expect(second.get('').upgrade.status).toBe('cancelled');
    expect(sent).toHaveLength(2);
    second.stop();
  });

  it('refuses to cancel an upgrade that ended, and an unknown one', () => {
    const u = coordinator();
    expect(() => u.cancel('', 'ops', '')).toThrow(NotFoundError);
    u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: ['west'], timeoutMs: 0 }, 'ops');
    connect(u, hello('w1', '0.3.0'));
    expect(() => u.cancel('u-test', 'ops', '')).toThrow(new ConflictError('agent upgrade u-test already ended upgraded; nothing to cancel'));
    expect(() => u.cancel('u-nope', 'ops', '')).toThrow(NotFoundError);
    u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: ['east'], timeoutMs: 0 }, 'ops');
    u.cancel('', 'ops', '');
    expect(() => u.cancel('', 'ops', '')).toThrow(/already ended cancelled; nothing to cancel$/);
    expect(store.history(AGENT_APP).filter((c) => c.action === 'agent-upgrade-cancel')).toHaveLength(1);
  });

  it('refuses a second upgrade, an unknown package or group, and skips agents already there', () => {
    const u = coordinator();
    expect(() => u.create({ version: '9.9', batches: 1, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops')).toThrow(NotFoundError);
    expect(() => u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: ['north'], timeoutMs: 0 }, 'ops')).toThrow(NotFoundError);
    store.markAgentConnected({ agentId: 'w1', host: 'w1', group: 'west', labels: {}, bootId: 'b', version: '0.3.0', instances: [] }, 1);
    u.create({ version: '0.3.0', batches: 2, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops');
    expect(() => u.create({ version: '0.3.0', batches: 1, batchSize: 0, groups: [], timeoutMs: 0 }, 'ops')).toThrow(ConflictError);
    connect(u, hello('e1', '0.3.0'));
    connect(u, hello('e2', '0.3.0'));
    expect(u.get('').upgrade.status).toBe('upgraded');
    expect(sent.map((c) => c.agentId)).toEqual(['e1', 'e2']);
  });
});
