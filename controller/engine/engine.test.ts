// The release engine against a real SQLite file and a hand-written fleet that plays agent results.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../common/logger.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { Store } from '../store/store.js';
import { ReleaseEngine, type CommandSink } from './engine.js';
import { EngineInbox } from './inbox.js';
import { baseSpec, FakeFleet, HOSTS, seed, type Sent } from './fake-fleet.js';

const logger = createLogger({ name: 'engine-test', level: 'silent' });

let dir: string;
let store: Store;
let engine: ReleaseEngine;
let fleet: FakeFleet;

function openStore(): Store {
  return Store.open(join(dir, 'fleetwave.db'));
}

function newEngine(s: Store, sink: CommandSink): ReleaseEngine {
  const e = new ReleaseEngine({ store: s, sink, logger });
  e.start();
  return e;
}

function release(spec: Partial<ReleaseSpec> = {}): string {
  return engine.createRelease({ app: 'shop', edition: '2.0', group: 'all', batches: 2, start: true, ...spec }, 'cli').id;
}

function instanceStatus(id: string): Record<string, string> {
  return Object.fromEntries(store.getReleaseDetail(id).instances.map((i) => [i.instance, i.status]));
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-engine-'));
  store = openStore();
  seed(store);
  fleet = new FakeFleet();
  engine = newEngine(store, fleet);
});

afterEach(() => {
  engine.stop();
  store.close();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('a rolling release over two groups in two batches each', () => {
  it('downloads the first batch first, pre-stages the others while it moves, then moves batch by batch to Released', () => {
    const id = release();
    // The first batch's downloads go alone: nothing else shares the controller and hosts while its quiesce waits.
    expect(fleet.sent.map((s) => `${s.kind} ${s.agentId}`)).toEqual(['DownloadPackage a1', 'DownloadPackage a2']);
    fleet.pump(engine);
    // Pre-staging: every other instance gets its download before the first batch is done.
    const staged = ['a3', 'a4', 'b1', 'b2', 'b3', 'b4'].map((h) => fleet.log.indexOf(`send DownloadPackage ${h}`));
    expect(Math.max(...staged)).toBeLessThan(fleet.log.indexOf('result HealthCheck a1'));
    expect(Math.min(...staged)).toBeGreaterThan(Math.max(fleet.log.indexOf('result DownloadPackage a1'), fleet.log.indexOf('result DownloadPackage a2')));

    const r = store.getRelease(id);
    expect(r.status).toBe('Released');
    expect(r.batchCount).toBe(4);
    expect(store.getReleaseDetail(id).batches.map((b) => [b.group, b.instances])).toEqual([
      ['east', ['a1', 'a2']],
      ['east', ['a3', 'a4']],
      ['west', ['b1', 'b2']],
      ['west', ['b3', 'b4']],
    ]);
    for (const h of HOSTS) expect(fleet.kinds(h.id)).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
    // Batches run in order: no instance of batch n+1 quiesces before batch n is healthy.
    const firstQuiesce = (id: string) => fleet.log.indexOf(`send Quiesce ${id}`);
    const healthy = (id: string) => fleet.log.indexOf(`result HealthCheck ${id}`);
    expect(firstQuiesce('a3')).toBeGreaterThan(Math.max(healthy('a1'), healthy('a2')));
    expect(firstQuiesce('b1')).toBeGreaterThan(Math.max(healthy('a3'), healthy('a4')));
    expect(firstQuiesce('b3')).toBeGreaterThan(Math.max(healthy('b1'), healthy('b2')));
    expect(Object.values(instanceStatus(id))).toEqual(Array(8).fill('released'));
    expect(store.listInstances('shop').every((i) => i.activeEdition === '2.0')).toBe(true);
    expect(store.countOutbox().pending).toBe(0);
  });

  it('quiesces no instance of a batch until all of that batch downloaded', () => {
    fleet.answer = (s) => (s.kind === 'DownloadPackage' && s.agentId === 'a2' ? 'hold' : { ok: true });
    const id = release();
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage']);
    expect(store.getRelease(id).status).toBe('Releasing');
    fleet.reply(engine, fleet.held.pop()!, { ok: true });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
  });

  it('times quiesce and drain apart when the drained event beats the Quiesce result', () => {
    fleet.answer = (s) => (s.kind === 'Quiesce' && s.agentId === 'a1' ? 'hold' : { ok: true });
    const id = release();
    fleet.pump(engine);
    vi.advanceTimersByTime(30);
    // The agent marked a1 ineligible, then its in-flight requests took 20 ms to finish.
    engine.drained('shop', 'a1', '', 20);
    const steps = store.getReleaseDetail(id).steps.filter((st) => st.instance === 'a1');
    const took = (name: string) => steps.filter((st) => st.step === name).map((st) => st.finishedUnixMs - st.startedUnixMs);
    expect(took('quiesce')).toEqual([10]);
    expect(took('drain')).toEqual([20]);
    const drain = steps.find((st) => st.step === 'drain')!;
    expect(drain.startedUnixMs).toBe(steps.find((st) => st.step === 'quiesce')!.finishedUnixMs);
    fleet.reply(engine, fleet.held.pop()!, { ok: true });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
  });

  it('runs the deploy pipeline (start, health) on instances without an edition', () => {
    rmSync(dir, { recursive: true, force: true });
    engine.stop();
    store.close();
    dir = mkdtempSync(join(tmpdir(), 'fleetwave-engine-'));
    store = openStore();
    seed(store, '');
    engine = newEngine(store, fleet);
    const id = release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'StartApp', 'HealthCheck']);
  });
});

describe('drain', () => {
  it('ends early on the drained event, even when it comes before the Quiesce result', () => {
    fleet.drainedOnQuiesce = false;
    fleet.answer = (s) => {
      if (s.kind === 'Quiesce') engine.drained('shop', s.agentId);
      return { ok: true };
    };
    const id = release({ group: 'east', batches: 1, drainMs: 60_000 });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
  });

  it('ends only on the drained of the current Quiesce: a late copy of an older one ends nothing', () => {
    fleet.drainedOnQuiesce = false;
    release({ group: 'east', batches: 1, drainMs: 60_000 });
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce']);
    // A drained redelivered from the ingest queue after a controller restart, of a Quiesce that is not the current one
    engine.drained('shop', 'a1', 'cmd-of-an-older-quiesce');
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce']);
    // The current Quiesce's drained ends the drain at once
    const quiesce = fleet.sent.find((s) => s.agentId === 'a1' && s.kind === 'Quiesce')!;
    engine.drained('shop', 'a1', quiesce.command.commandId);
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
  });

  it('otherwise ends when the drainage interval passes', () => {
    fleet.drainedOnQuiesce = false;
    const id = release({ group: 'east', batches: 1, drainMs: 20_000 });
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce']);
    vi.advanceTimersByTime(19_999);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce']);
    vi.advanceTimersByTime(1);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp']);
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    const drain = store.getReleaseDetail(id).steps.find((s) => s.instance === 'a1' && s.step === 'drain')!;
    expect(drain.finishedUnixMs - drain.startedUnixMs).toBe(20_000);
  });
});

describe('failures', () => {
  it('a first-batch failure fails the release and puts the batch back on its old edition', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' && s.agentId === 'a1' && s.command.releaseId && !reverting(s) ? { ok: false, error: 'got 500' } : { ok: true });
    const reverting = (s: Sent) => fleet.sent.filter((x) => x.agentId === s.agentId && x.kind === 'RestartApp').length > 1;
    const id = release();
    fleet.pump(engine);
    const r = store.getRelease(id);
    expect(r.status).toBe('Release failed');
    expect(r.message).toContain('batch 1 failed: a1: health: got 500');
    for (const h of ['a1', 'a2']) expect(fleet.kinds(h)).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck', 'RestartApp', 'HealthCheck']);
    const back = fleet.sent.filter((s) => s.kind === 'RestartApp' && s.command.restartApp!.edition === '1.0').map((s) => s.agentId);
    expect(back.sort()).toEqual(['a1', 'a2']);
    expect(fleet.kinds('a3')).toEqual(['DownloadPackage']);
    const statuses = instanceStatus(id);
    expect(statuses).toMatchObject({ a1: 'failed', a2: 'rolled back', a3: 'pending', b1: 'pending' });
    expect(store.getReleaseDetail(id).instances.find((i) => i.instance === 'a1')!.error).toContain('back on 1.0');
    expect(store.countOutbox().pending).toBe(0);
  });

  it('a later-batch failure fails the release without best effort and continues with it', () => {
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a3' ? { ok: false, error: 'spawn failed' } : { ok: true });
    const failing = release();
    fleet.pump(engine);
    expect(store.getRelease(failing).status).toBe('Release failed');
    expect(fleet.kinds('b1')).toEqual(['DownloadPackage']);
  });

  it('with best effort a later-batch failure is reported and the release goes on', () => {
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a3' ? { ok: false, error: 'spawn failed' } : { ok: true });
    const id = release({ bestEffort: true });
    fleet.pump(engine);
    const r = store.getRelease(id);
    expect(r.status).toBe('Released');
    expect(r.message).toContain('a3: restart: spawn failed');
    expect(instanceStatus(id).b4).toBe('released');
  });

  it('a result that arrived when a deadline falls due counts first: the step succeeds, it does not time out', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const id = release({ group: 'east', batches: 1, timeouts: { downloadMs: 0, stopMs: 0, startMs: 0, healthMs: 10_000 } });
    fleet.pump(engine);
    const inbox = new EngineInbox(engine);
    engine.attachInbox(inbox);
    // The deadline passes while the answers wait in the inbox (a busy controller read them, has not handed them over).
    vi.setSystemTime(Date.now() + 10_000);
    for (const s of fleet.held.splice(0)) fleet.reply(inbox, s, { ok: true });
    engine.fireDeadlines();
    expect(instanceStatus(id)).toMatchObject({ a1: 'released', a2: 'released' });
    expect(store.getRelease(id).status).toBe('Released');
    inbox.close();
  });

  it('a step deadline fails the instance, or marks it unreachable when its agent is', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const id = release({ group: 'east', batches: 1, timeouts: { downloadMs: 0, stopMs: 0, startMs: 0, healthMs: 10_000 } });
    fleet.pump(engine);
    store.markAgentUnreachable('a2', Date.now());
    vi.advanceTimersByTime(10_000);
    expect(instanceStatus(id)).toMatchObject({ a1: 'failed', a2: 'unreachable' });
    const errors = Object.fromEntries(store.getReleaseDetail(id).instances.map((i) => [i.instance, i.error]));
    expect(errors.a1).toBe('health timed out');
    expect(errors.a2).toBe('health timed out (agent unreachable)');
    // The timed-out health checks are abandoned: a late answer changes nothing, and they are never re-sent.
    const abandoned = fleet.held.map((h) => h.command.commandId);
    expect(store.pendingCommandsForAgent('a1').some((c) => abandoned.includes(c.commandId))).toBe(false);
    fleet.answer = () => ({ ok: true });
    for (const s of fleet.held.splice(0)) fleet.reply(engine, s, { ok: true });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Release failed');
    expect(instanceStatus(id)).toMatchObject({ a1: 'failed', a2: 'rolled back' });
  });
});

describe('a controller restart mid-release', () => {
  it('resumes from SQLite without enqueuing any command twice', () => {
    fleet.drainedOnQuiesce = false;
    const id = release({ drainMs: 5_000 });
    fleet.pump(engine); // downloads done, batch 1 quiesced and draining
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce']);
    // A RestartApp goes out after the drain and the controller dies before its result.
    vi.advanceTimersByTime(5_000);
    const inFlight = fleet.queue.splice(0);
    expect(inFlight.map((s) => s.kind)).toEqual(['RestartApp', 'RestartApp']);
    engine.stop();
    store.close();

    store = openStore();
    const fleet2 = new FakeFleet();
    fleet2.drainedOnQuiesce = false;
    engine = newEngine(store, fleet2);
    expect(fleet2.sent).toEqual([]);
    // The agents say hello again: their commands without a result are re-sent with the same ids.
    for (const h of HOSTS) fleet2.deliver(store.pendingCommandsForAgent(h.id));
    expect(fleet2.sent.map((s) => s.command.commandId).sort()).toEqual(inFlight.map((s) => s.command.commandId).sort());
    for (let round = 0; round < 10 && store.getRelease(id).status === 'Releasing'; round++) {
      fleet2.pump(engine);
      vi.advanceTimersByTime(5_000);
    }
    expect(store.getRelease(id).status).toBe('Released');
    const all = [...fleet.sent, ...fleet2.sent.filter((s) => !inFlight.some((x) => x.command.commandId === s.command.commandId))];
    const ids = all.map((s) => s.command.commandId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const h of HOSTS) {
      expect(all.filter((s) => s.agentId === h.id).map((s) => s.kind)).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
    }
  });
});

describe('operator actions', () => {
  it('cancel lets instances in progress finish and starts no new batch', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const id = release();
    fleet.pump(engine);
    engine.act(id, 'cancel', 'alice', 'wrong edition');
    expect(store.getRelease(id).status).toBe('Releasing');
    for (const s of fleet.held.splice(0)) fleet.reply(engine, s, { ok: true });
    fleet.pump(engine);
    const r = store.getRelease(id);
    expect(r.status).toBe('Release failed');
    expect(r.message).toBe('cancelled by alice');
    expect(instanceStatus(id)).toMatchObject({ a1: 'released', a2: 'released', a3: 'pending' });
    expect(store.history('shop').map((c) => [c.action, c.actor])).toEqual([
      ['create', 'cli'],
      ['start', 'cli'],
      ['cancel', 'alice'],
    ]);
  });

  it('manual batch mode waits for continue; pause and resume hold between batches', () => {
    const id = release({ group: 'east', batchMode: 'manual' });
    fleet.pump(engine);
    expect(store.getRelease(id).waitingFor).toBe('continue before batch 2');
    expect(() => engine.act(id, 'approve', 'bob', '')).toThrow(/not approval/);
    engine.act(id, 'pause', 'bob', '');
    expect(store.getRelease(id).status).toBe('Suspended');
    // A continue given while suspended is kept; the batch starts on resume.
    engine.act(id, 'continue', 'bob', 'looks good');
    expect(fleet.kinds('a3')).toEqual(['DownloadPackage']);
    engine.act(id, 'resume', 'bob', '');
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    expect(store.history('shop').some((c) => c.action === 'approve' && c.result.startsWith('refused'))).toBe(true);
  });

  it('says what it waits for again when resumed at a checkpoint', () => {
    const id = release({ group: 'east', approvalBefore: [2] });
    fleet.pump(engine);
    expect(store.getRelease(id).waitingFor).toBe('approval before batch 2');
    engine.act(id, 'pause', 'bob', '');
    expect(store.getRelease(id)).toMatchObject({ status: 'Suspended', waitingFor: 'resume' });
    engine.act(id, 'resume', 'bob', '');
    expect(store.getRelease(id)).toMatchObject({ status: 'Releasing', waitingFor: 'approval before batch 2' });
  });

  it('waits the configured time between batches in auto mode', () => {
    const id = release({ group: 'east', waitMs: 30_000 });
    fleet.pump(engine);
    expect(fleet.kinds('a3')).toEqual(['DownloadPackage']);
    vi.advanceTimersByTime(30_000);
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
  });

  it('refuses a second active release for an overlapping group', () => {
    fleet.answer = () => 'hold';
    release({ group: 'east' });
    expect(() => release({ group: 'all' })).toThrow(/still active/);
    expect(() => release({ group: 'west' })).not.toThrow();
  });

  it('records a refused create in the history (actor, action, reason), though the create itself is rolled back', () => {
    fleet.answer = () => 'hold';
    const first = release({ group: 'east' });
    expect(() => engine.createRelease(baseSpec({ group: 'all' }), 'bob@host')).toThrow(/still active/);
    expect(() => engine.createRelease(baseSpec({ edition: '9.9' }), 'bob@host')).toThrow(/edition '9.9'/);
    const refused = store.history('shop').filter((c) => c.result.startsWith('refused'));
    expect(refused).toEqual([
      expect.objectContaining({ actor: 'bob@host', action: 'create', releaseId: '', result: expect.stringMatching(/^refused: release .* is still active/) }),
      expect.objectContaining({ actor: 'bob@host', action: 'create', releaseId: '', result: "refused: edition '9.9' of app 'shop' does not exist" }),
    ]);
    expect(store.listReleases('shop').map((r) => r.id)).toEqual([first]);
    // An app that does not exist has no history to write to.
    expect(() => engine.createRelease(baseSpec({ app: 'nope' }), 'bob@host')).toThrow(/app 'nope'/);
  });
});
