// The engine's recovery and guard features against a real SQLite file and the fake fleet:
// rollback, auto-rollback, retry, back-out, max-unavailable, full drain and pause mid-batch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NotFoundError } from '../../common/errors.js';
import { createLogger } from '../../common/logger.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { Store } from '../store/store.js';
import { ReleaseEngine } from './engine.js';
import { baseSpec, FakeFleet, seed, type Sent } from './fake-fleet.js';

const logger = createLogger({ name: 'recovery-test', level: 'silent' });

let dir: string;
let store: Store;
let engine: ReleaseEngine;
let fleet: FakeFleet;

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-recovery-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  fleet = new FakeFleet();
  seed(store, '1.0', fleet, ['1.0', '2.0', '3.0']);
  engine = new ReleaseEngine({ store, sink: fleet, logger });
  engine.start();
});

afterEach(() => {
  engine.stop();
  store.close();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

function release(spec: Partial<ReleaseSpec> = {}): string {
  return engine.createRelease(baseSpec(spec), 'cli').id;
}

const status = (id: string) => store.getRelease(id).status;
const statuses = (id: string) => Object.fromEntries(store.getReleaseDetail(id).instances.map((i) => [i.instance, i.status]));
const editions = () => Object.fromEntries(store.listInstances('shop').map((i) => [i.agentId, i.activeEdition]));
/** Fails `kind` on `agents` while they move to the new edition (not on their way back to 1.0). */
const failOn = (kind: string, agents: string[]) => (s: Sent) => {
  const goingBack = s.command.restartApp ? s.command.restartApp.edition === '1.0' : fleet.disk.get(s.agentId)?.active === '1.0';
  return s.kind === kind && agents.includes(s.agentId) && !goingBack ? { ok: false, error: 'boom' } : { ok: true };
};
const quiesced = () => fleet.sent.filter((s) => s.kind === 'Quiesce').map((s) => s.agentId);
const count = (id: string, instanceStatus: string) => Object.values(statuses(id)).filter((s) => s === instanceStatus).length;

describe('rollback', () => {
  it('puts every moved instance back, newest batch first, from the kept edition without a download', () => {
    const id = release({ group: 'east' });
    fleet.pump(engine);
    expect(status(id)).toBe('Released');
    const before = fleet.sent.length;

    engine.act(id, 'rollback', 'alice', 'bad numbers');
    fleet.pump(engine);
    expect(status(id)).toBe('Rolled back');
    const rollback = fleet.sent.slice(before);
    expect(rollback.some((s) => s.kind === 'DownloadPackage')).toBe(false);
    expect(rollback.filter((s) => s.kind === 'RestartApp').every((s) => s.command.restartApp!.edition === '1.0')).toBe(true);
    // Newest batch first: a3/a4 (batch 2) restart before a1/a2 (batch 1) quiesce.
    const order = rollback.filter((s) => s.kind === 'Quiesce').map((s) => s.agentId);
    expect(order).toEqual(['a3', 'a4', 'a1', 'a2']);
    expect(Object.values(statuses(id))).toEqual(['rolled back', 'rolled back', 'rolled back', 'rolled back']);
    expect(editions()).toMatchObject({ a1: '1.0', a2: '1.0', a3: '1.0', a4: '1.0', b1: '1.0' });
    const detail = store.getRelease(id);
    expect([detail.rollbackBatches, detail.rollbackCurrent]).toEqual([2, 2]);
  });

  it('takes a batch count for larger rollback batches and refuses more batches than moved instances', () => {
    const id = release({ group: 'east', batches: 4 });
    fleet.pump(engine);
    expect(() => engine.act(id, 'rollback', 'alice', '', { batches: 5 })).toThrow(/--batches 5/);
    expect(status(id)).toBe('Released');
    engine.act(id, 'rollback', 'alice', '', { batches: 1 });
    expect(store.getRelease(id).rollbackBatches).toBe(1);
    // One batch of four: all quiesce before any result comes back.
    const quiesces = fleet.queue.filter((s) => s.kind === 'Quiesce').map((s) => s.agentId);
    expect(quiesces.sort()).toEqual(['a1', 'a2', 'a3', 'a4']);
    fleet.pump(engine);
    expect(status(id)).toBe('Rolled back');
  });

  it('overrides a checkpoint: a release waiting for approval rolls back what it moved', () => {
    const id = release({ group: 'east', approvalBefore: [2] });
    fleet.pump(engine);
    expect(store.getRelease(id).waitingFor).toBe('approval before batch 2');
    engine.act(id, 'rollback', 'bob', '');
    fleet.pump(engine);
    expect(status(id)).toBe('Rolled back');
    expect(statuses(id)).toMatchObject({ a1: 'rolled back', a2: 'rolled back', a3: 'pending', a4: 'pending' });
    expect(() => engine.act(id, 'approve', 'bob', '')).toThrow(/not waiting/);
  });

  it('ends in Rollback failed when an instance cannot go back, and a second rollback retries it', () => {
    const id = release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a2' ? { ok: false, error: 'no such edition' } : { ok: true });
    engine.act(id, 'rollback', 'bob', '');
    fleet.pump(engine);
    expect(status(id)).toBe('Rollback failed');
    expect(store.getRelease(id).message).toContain('a2: rollback failed: restart: no such edition');
    fleet.answer = () => ({ ok: true });
    engine.act(id, 'rollback', 'bob', 'again');
    fleet.pump(engine);
    expect(status(id)).toBe('Rolled back');
    expect(statuses(id).a2).toBe('rolled back');
  });

  it('refuses to roll back a release whose first batch failed (nothing moved) and leaves it unchanged', () => {
    fleet.answer = failOn('HealthCheck', ['a1']);
    const id = release({ group: 'east' });
    fleet.pump(engine);
    expect(status(id)).toBe('Release failed');
    const before = store.getReleaseDetail(id);
    expect(() => engine.act(id, 'rollback', 'bob', 'undo')).toThrow(/^nothing to roll back: release r-\S+ moved no instance off its previous edition \(its failed first batch was already put back\)$/);
    const after = store.getReleaseDetail(id);
    expect(after.release).toEqual(before.release);
    expect(after.batches).toEqual(before.batches);
    expect(after.instances).toEqual(before.instances);
    expect(after.changes.at(-1)).toMatchObject({ actor: 'bob', action: 'rollback', comment: 'undo', result: expect.stringMatching(/^refused: nothing to roll back/) });
  });

  it('downloads the old edition again only when the agent no longer keeps it', () => {
    const id = release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    fleet.disk.get('a1')!.kept = ['2.0'];
    store.markAgentConnected(
      { agentId: 'a1', host: 'a1', group: 'east', labels: {}, bootId: 'b', version: 't', instances: [{ app: 'shop', servicePort: 8080, activeEdition: '2.0', keptEditions: ['2.0'], processState: 'running', quiesced: false }] },
      Date.now(),
    );
    const before = fleet.sent.length;
    engine.act(id, 'rollback', 'bob', '');
    fleet.pump(engine);
    const downloads = fleet.sent.slice(before).filter((s) => s.kind === 'DownloadPackage');
    expect(downloads.map((s) => [s.agentId, s.command.downloadPackage!.edition])).toEqual([['a1', '1.0']]);
    expect(status(id)).toBe('Rolled back');
  });
});

describe('auto-rollback and retry', () => {
  it('auto-rollback rolls a release that failed after its first batch back', () => {
    fleet.answer = failOn('HealthCheck', ['a3']);
    const id = release({ group: 'east', autoRollback: true });
    fleet.pump(engine);
    expect(status(id)).toBe('Rolled back');
    expect(editions()).toMatchObject({ a1: '1.0', a2: '1.0', a3: '1.0', a4: '1.0' });
    const auto = store.history('shop').find((c) => c.action === 'rollback')!;
    expect([auto.actor, auto.comment]).toEqual(['controller', 'auto-rollback']);
  });

  it('a cancel does not roll back by itself, even with auto-rollback', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const id = release({ group: 'east', autoRollback: true });
    fleet.pump(engine);
    engine.act(id, 'cancel', 'alice', '');
    fleet.answer = () => ({ ok: true });
    for (const s of fleet.held.splice(0)) fleet.reply(engine, s, { ok: true });
    fleet.pump(engine);
    expect(status(id)).toBe('Release failed');
  });

  it('retry re-runs the failed instances and the batches after them', () => {
    fleet.answer = failOn('RestartApp', ['a3']);
    const id = release({ group: 'east' });
    fleet.pump(engine);
    expect(status(id)).toBe('Release failed');
    expect(() => engine.act(id, 'resume', 'bob', '')).toThrow(/cannot resume/);
    fleet.answer = () => ({ ok: true });
    engine.act(id, 'retry', 'bob', 'fixed the host');
    fleet.pump(engine);
    expect(status(id)).toBe('Released');
    expect(Object.values(statuses(id))).toEqual(Array(4).fill('released'));
    // a1 and a2 were released already: they ran their pipeline once.
    expect(fleet.kinds('a1').filter((k) => k === 'RestartApp')).toHaveLength(1);
    expect(fleet.kinds('a3').filter((k) => k === 'RestartApp')).toHaveLength(2);
    // a3's edition before the release is still known, so a later rollback puts it back on 1.0.
    expect(store.getReleaseDetail(id).instances.find((i) => i.instance === 'a3')!.fromEdition).toBe('1.0');
  });

  it('retry after a first-batch failure runs the reverted batch again', () => {
    let failures = 1;
    fleet.answer = (s) => (s.kind === 'HealthCheck' && s.agentId === 'a1' && failures-- > 0 ? { ok: false, error: 'got 500' } : { ok: true });
    const id = release({ group: 'east' });
    fleet.pump(engine);
    expect(statuses(id)).toMatchObject({ a1: 'failed', a2: 'rolled back' });
    engine.act(id, 'retry', 'bob', '');
    fleet.pump(engine);
    expect(status(id)).toBe('Released');
    expect(editions()).toMatchObject({ a1: '2.0', a2: '2.0', a3: '2.0', a4: '2.0' });
  });
});

describe('back-out', () => {
  it('releases the previous edition with the same policy, without downloading it', () => {
    const first = release({ group: 'east', batches: 2, drainMs: 7_000 });
    fleet.pump(engine);
    const before = fleet.sent.length;
    const back = engine.backOut('shop', '', 'carol', 'revenue dropped');
    fleet.pump(engine);
    const r = store.getRelease(back.id);
    expect([r.edition, r.group, r.status, r.spec.batches, r.spec.drainMs]).toEqual(['1.0', 'east', 'Released', 2, 7_000]);
    expect(fleet.sent.slice(before).some((s) => s.kind === 'DownloadPackage')).toBe(false);
    expect(editions()).toMatchObject({ a1: '1.0', a4: '1.0' });
    expect(store.history('shop').find((c) => c.action === 'back-out')).toMatchObject({ actor: 'carol', comment: 'revenue dropped', result: expect.stringContaining(first) });
  });

  it('refuses when nothing was released or nothing ran before', () => {
    expect(() => engine.backOut('shop', '', 'carol', '')).toThrow(/no Released release/);
    expect(() => engine.backOut('nope', '', 'carol', '')).toThrow(/app 'nope' does not exist/);
    expect(() => engine.backOut('shop', 'purple', 'carol', '')).toThrow(NotFoundError);
    expect(store.history('shop').map((c) => c.result)).toEqual([
      "refused: app 'shop' has no Released release to back out",
      "refused: group 'purple' has no instance of app 'shop'",
    ]);
  });
});

describe('guards', () => {
  it('max-unavailable keeps at most K instances out of service, whatever the batch size', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const id = release({ group: 'east', batches: 1, maxUnavailable: 1 });
    fleet.pump(engine);
    expect(quiesced()).toHaveLength(1);
    expect(store.getRelease(id).waitingFor).toBe('max unavailable (1) reached');
    for (let n = 2; n <= 4; n++) {
      fleet.reply(engine, fleet.held.shift()!, { ok: true });
      fleet.pump(engine);
      expect(fleet.sent.filter((s) => s.kind === 'Quiesce')).toHaveLength(n);
    }
    fleet.reply(engine, fleet.held.shift()!, { ok: true });
    expect(status(id)).toBe('Released');
  });

  it('max-unavailable counts the other releases of the app and wakes a held release', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const east = release({ group: 'east', batches: 1, maxUnavailable: 1 });
    const west = release({ group: 'west', batches: 1, maxUnavailable: 1 });
    fleet.pump(engine);
    // One instance of the app out of service, across both releases.
    expect(quiesced()).toHaveLength(1);
    fleet.reply(engine, fleet.held.shift()!, { ok: true });
    fleet.pump(engine);
    expect(fleet.sent.filter((s) => s.kind === 'Quiesce')).toHaveLength(2);
    fleet.answer = () => ({ ok: true });
    for (let round = 0; round < 20 && fleet.held.length; round++) {
      fleet.reply(engine, fleet.held.shift()!, { ok: true });
      fleet.pump(engine);
    }
    expect([status(east), status(west)]).toEqual(['Released', 'Released']);
  });

  it('max-unavailable stops a release whose failed instances fill it, with best effort', () => {
    fleet.answer = failOn('HealthCheck', ['a3', 'a4']);
    const id = release({ group: 'east', batches: 4, maxUnavailable: 1, bestEffort: true });
    fleet.pump(engine);
    expect(status(id)).toBe('Release failed');
    expect(store.getRelease(id).message).toMatch(/max unavailable \(1\) reached/);
    expect(statuses(id)).toMatchObject({ a3: 'failed', a4: 'pending' });
  });

  it('full drain waits the whole interval even when the agent reports 0 in flight', () => {
    const id = release({ group: 'east', batches: 1, drainMs: 10_000, fullDrain: true });
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce']);
    vi.advanceTimersByTime(10_000);
    fleet.pump(engine);
    expect(status(id)).toBe('Released');
    const drain = store.getReleaseDetail(id).steps.find((s) => s.instance === 'a1' && s.step === 'drain')!;
    expect(drain.finishedUnixMs - drain.startedUnixMs).toBe(10_000);
  });

  it('pause mid-batch: Suspending until the instances in progress finish, none starts after', () => {
    fleet.answer = (s) => (s.kind === 'HealthCheck' ? 'hold' : { ok: true });
    const id = release({ group: 'east', batches: 1, maxUnavailable: 2 });
    fleet.pump(engine);
    engine.act(id, 'pause', 'dave', '');
    expect(status(id)).toBe('Suspending');
    expect(() => engine.act(id, 'approve', 'dave', '')).toThrow(/not waiting/);
    for (const s of fleet.held.splice(0)) fleet.reply(engine, s, { ok: true });
    fleet.pump(engine);
    expect(status(id)).toBe('Suspended');
    expect([count(id, 'released'), count(id, 'pending')]).toEqual([2, 2]);
    engine.act(id, 'cancel', 'erin', 'stop here');
    expect(status(id)).toBe('Release failed');
    expect(() => engine.act(id, 'resume', 'dave', '')).toThrow(/cannot resume/);
  });

  it('a rejected checkpoint fails the release and leaves the rest on the old edition', () => {
    const id = release({ group: 'east', approvalBefore: [2], autoRollback: true });
    fleet.pump(engine);
    engine.act(id, 'reject', 'frank', 'error rate up');
    expect(status(id)).toBe('Release failed');
    expect(editions()).toMatchObject({ a1: '2.0', a2: '2.0', a3: '1.0', a4: '1.0' });
    expect(store.getReleaseDetail(id).batches[1]).toMatchObject({ status: 'failed', checkpointBy: 'frank', checkpointComment: 'error rate up' });
  });
});
