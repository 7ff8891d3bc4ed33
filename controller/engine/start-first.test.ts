// The engine's start-first pipeline (download ─▶ restart ─▶ health) beside stop-first, against a real SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../common/logger.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { Store } from '../store/store.js';
import type { AppRecord } from '../domain/records.js';
import { stepTimeout } from './commands.js';
import { ReleaseEngine } from './engine.js';
import { FakeFleet, HOSTS, seed } from './fake-fleet.js';
import { compileReleaseSpec } from '../domain/spec.js';

const logger = createLogger({ name: 'start-first-test', level: 'silent' });

let dir: string;
let store: Store;
let engine: ReleaseEngine;
let fleet: FakeFleet;

/** A fresh store whose app `shop` has `app`'s fields (an app of `app create` is start-first unless it says not). */
function setUp(app: Partial<AppRecord> = { updateOrder: 'start-first' }): void {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-start-first-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  fleet = new FakeFleet();
  seed(store, '1.0', fleet, ['1.0', '2.0'], app);
  engine = new ReleaseEngine({ store, sink: fleet, logger });
  engine.start();
}

function release(spec: Partial<ReleaseSpec> = {}): string {
  return engine.createRelease({ app: 'shop', edition: '2.0', group: 'all', batches: 2, start: true, ...spec }, 'cli').id;
}

function restarts(agentId: string): Array<{ edition: string; updateOrder: string }> {
  return fleet.sent.filter((s) => s.agentId === agentId && s.command.restartApp).map((s) => ({ edition: s.command.restartApp!.edition, updateOrder: s.command.restartApp!.updateOrder }));
}

function orders(id: string): Record<string, string> {
  return Object.fromEntries(store.getReleaseDetail(id).instances.map((i) => [i.instance, i.updateOrder]));
}

beforeEach(() => vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') }));

afterEach(() => {
  engine.stop();
  store.close();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('a start-first app', () => {
  it('releases with download, restart (start-first) and health: no quiesce, no drain', () => {
    setUp();
    const id = release();
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    for (const h of HOSTS) {
      expect(fleet.kinds(h.id)).toEqual(['DownloadPackage', 'RestartApp', 'HealthCheck']);
      expect(restarts(h.id)).toEqual([{ edition: '2.0', updateOrder: 'start-first' }]);
    }
    const detail = store.getReleaseDetail(id);
    expect(detail.steps.filter((s) => s.instance === 'a1').map((s) => s.step)).toEqual(['download', 'restart', 'health']);
    expect(Object.values(orders(id))).toEqual(Array(8).fill('start-first'));
  });

  it('records the stop-first an agent fell back to', () => {
    setUp();
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a1' ? { ok: true, updateOrder: 'stop-first' } : { ok: true });
    const id = release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    expect(orders(id)).toMatchObject({ a1: 'stop-first', a2: 'start-first' });
  });

  it('gives the restart step time to start, health-check and drain', () => {
    const spec = compileReleaseSpec({ app: 'shop', edition: '2.0' });
    expect(stepTimeout('restart', spec, 'start-first')).toBe(spec.timeouts.startMs + spec.timeouts.healthMs + spec.timeouts.stopMs);
    expect(stepTimeout('restart', spec, 'stop-first')).toBe(spec.timeouts.startMs + spec.timeouts.stopMs);
  });

  it('keeps stop-first for a hard reset', () => {
    setUp();
    const id = release({ group: 'east', batches: 1, reset: 'hard' });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce', 'HardResetServer', 'HealthCheck']);
  });

  it('keeps stop-first for an app that drains itself', () => {
    setUp({ updateOrder: 'start-first', drainMode: 'self', quiesceHook: '/quiesce', inflightPath: '/inflight' });
    release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
    expect(restarts('a1')).toEqual([{ edition: '2.0', updateOrder: 'stop-first' }]);
  });

  it('uses the release\'s --update-order stop-first over the app\'s', () => {
    setUp();
    release({ group: 'east', batches: 1, updateOrder: 'stop-first' });
    fleet.pump(engine);
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
  });
});

describe('a failed start-first restart', () => {
  it('leaves the failed instance on its old edition (nothing to revert) and reverts the rest of the first batch', () => {
    setUp();
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a1' ? { ok: false, error: 'start-first: edition 2.0 unhealthy; the old edition still serves' } : { ok: true });
    const id = release({ group: 'east', batches: 2 });
    fleet.pump(engine);
    const r = store.getRelease(id);
    expect(r.status).toBe('Release failed');
    const a1 = store.getReleaseDetail(id).instances.find((i) => i.instance === 'a1')!;
    expect(a1).toMatchObject({ status: 'failed', moved: 'none', updateOrder: 'start-first' });
    expect(a1.error).toMatch(/old edition still serves/);
    // No restart back onto 1.0 for a1: its old process never stopped.
    expect(restarts('a1')).toEqual([{ edition: '2.0', updateOrder: 'start-first' }]);
    // a2 had switched: it goes back, start-first too, without quiesce.
    expect(restarts('a2')).toEqual([
      { edition: '2.0', updateOrder: 'start-first' },
      { edition: '1.0', updateOrder: 'start-first' },
    ]);
    expect(fleet.kinds('a2')).not.toContain('Quiesce');
    // The second batch never moved.
    expect(fleet.kinds('a3')).toEqual(['DownloadPackage']);
  });

  it('counts it moved when the agent reports the new edition active (it failed after the switch)', () => {
    setUp();
    fleet.answer = (s) => {
      if (s.kind !== 'RestartApp' || s.agentId !== 'a1') return { ok: true };
      fleet.disk.get('a1')!.active = '2.0';
      return { ok: false, error: 'deadline passed after 900 ms of restartApp' };
    };
    const id = release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    const a1 = store.getReleaseDetail(id).instances.find((i) => i.instance === 'a1')!;
    expect(a1).toMatchObject({ status: 'failed', updateOrder: 'start-first' });
    expect(restarts('a1').map((r) => r.edition)).toEqual(['2.0', '1.0']);
  });

  it('keeps a timed-out restart as moved: the controller cannot know where the agent got to', () => {
    setUp();
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a1' ? 'hold' : { ok: true });
    const id = release({ group: 'east', batches: 1, timeouts: { downloadMs: 0, stopMs: 1000, startMs: 1000, healthMs: 1000 } });
    fleet.pump(engine);
    vi.advanceTimersByTime(3500);
    fleet.pump(engine);
    const a1 = store.getReleaseDetail(id).instances.find((i) => i.instance === 'a1')!;
    expect(a1.status).toBe('failed');
    expect(restarts('a1').map((r) => r.edition)).toEqual(['2.0', '1.0']);
  });
});

describe('a rollback of a start-first release', () => {
  it('restarts each moved instance on its old edition, start-first, then health-checks it', () => {
    setUp();
    const id = release({ group: 'east', batches: 1 });
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    engine.act(id, 'rollback', 'alice', 'bad edition');
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Rolled back');
    expect(fleet.kinds('a1')).toEqual(['DownloadPackage', 'RestartApp', 'HealthCheck', 'RestartApp', 'HealthCheck']);
    expect(restarts('a1')[1]).toEqual({ edition: '1.0', updateOrder: 'start-first' });
  });
});
