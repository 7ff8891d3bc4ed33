// The release events the engine publishes say what happened: the plan at creation, the failure on every failed
// step, and a rollback in its own words (rolling back, steps of phase rollback), never `released`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { Store } from '../store/store.js';
import { ReleaseEngine } from './engine.js';
import { baseSpec, FakeFleet, seed, type Sent } from './fake-fleet.js';

const logger = createLogger({ name: 'release-events-test', level: 'silent' });

let dir: string;
let store: Store;
let engine: ReleaseEngine;
let fleet: FakeFleet;
let events: Array<{ reason: string; data: Record<string, unknown> }>;

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-release-events-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  fleet = new FakeFleet();
  seed(store, '1.0', fleet);
  events = [];
  engine = new ReleaseEngine({ store, sink: fleet, logger, publish: (_app, _id, reason, data) => void events.push({ reason, data }) });
  engine.start();
});

afterEach(() => {
  engine.stop();
  store.close();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

const steps = () => events.filter((e) => e.reason === 'instance.step').map((e) => e.data);
/** The first health check on `agent` fails (the new edition); the one after it (back on the old edition) passes. */
function failsFirstHealthOn(agent: string): (s: Sent) => { ok: boolean; error?: string } {
  let failed = false;
  return (s) => {
    if (s.kind !== 'HealthCheck' || s.agentId !== agent || failed) return { ok: true };
    failed = true;
    return { ok: false, error: 'GET /healthz answered 500, expected 200' };
  };
}

describe('release events', () => {
  it('opens with the plan: every batch with its group and instances', () => {
    const id = engine.createRelease(baseSpec({ start: false }), 'alice').id;
    expect(events[0]).toEqual({
      reason: 'created',
      data: {
        edition: '2.0',
        group: 'all',
        status: 'To release',
        createdBy: 'alice',
        batches: store.getReleaseDetail(id).batches.map((b) => ({ batch: b.number, group: b.group, instances: b.instances })),
      },
    });
    expect((events[0]!.data.batches as unknown[]).length).toBe(4);
  });

  it('gives every failed step, and every step of a failed instance, its failure in one line', () => {
    // a1 fails in the first batch: the release fails and a1 goes back to 1.0 while it stays failed
    fleet.answer = failsFirstHealthOn('a1');
    const id = engine.createRelease(baseSpec(), 'cli').id;
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Release failed');
    const failing = steps().filter((s) => s.stepStatus === 'failed' || s.status === 'failed' || s.status === 'unreachable');
    expect(failing.length).toBeGreaterThan(2);
    for (const s of failing) expect(s.error, JSON.stringify(s)).toMatch(/^\S/);
    expect(steps().find((s) => s.status === 'failed')).toMatchObject({ instance: 'a1', step: 'health', stepStatus: 'failed', error: 'health: GET /healthz answered 500, expected 200' });
    expect(steps().filter((s) => s.instance === 'a1' && s.phase === 'revert').map((s) => `${s.step}:${s.stepStatus}`)).toEqual([
      'restart:running',
      'restart:ok',
      'health:running',
      'health:ok',
    ]);
    // Its released sibling goes back too, saying so rather than `released`
    const a2 = steps().filter((s) => s.instance === 'a2' && s.phase === 'revert');
    expect(a2.map((s) => s.status)).not.toContain('released');
    expect(a2[0]).toMatchObject({ step: '', status: 'rolling back' });
    expect(a2.at(-1)).toMatchObject({ status: 'rolled back' });
  });

  it('reports a rollback as rolling back with steps of phase rollback, then rolled back, never released', () => {
    fleet.answer = () => ({ ok: true });
    const id = engine.createRelease(baseSpec({ batches: 1 }), 'cli').id;
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Released');
    const from = events.length;
    engine.act(id, 'rollback', 'alice', '');
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Rolled back');
    const during = events.slice(from).filter((e) => e.reason === 'instance.step').map((e) => e.data);
    expect(during.filter((s) => s.status === 'released')).toEqual([]);
    const a1 = during.filter((s) => s.instance === 'a1');
    expect(a1[0]).toMatchObject({ step: '', phase: 'rollback', status: 'rolling back', error: '' });
    expect(a1.filter((s) => s.stepStatus === 'running').map((s) => s.step)).toEqual(['quiesce', 'drain', 'restart', 'health']);
    expect(a1.every((s) => s.phase === 'rollback')).toBe(true);
    expect(a1.at(-1)).toMatchObject({ status: 'rolled back', error: 'back on 1.0' });
    // The detail's timeline tells the rollback's steps from the forward ones
    const timeline = store.getReleaseDetail(id).steps.filter((s) => s.instance === 'a1');
    expect(timeline.map((s) => `${s.phase}:${s.step}`)).toEqual([
      ':download',
      'upgrade:quiesce',
      'upgrade:drain',
      'upgrade:restart',
      'upgrade:health',
      'rollback:quiesce',
      'rollback:drain',
      'rollback:restart',
      'rollback:health',
    ]);
  });

  it('ends a rollback that could not put an instance back as failed, with why', () => {
    const id = engine.createRelease(baseSpec({ batches: 1 }), 'cli').id;
    fleet.pump(engine);
    fleet.answer = (s) => (s.kind === 'HealthCheck' && s.agentId === 'b1' ? { ok: false, error: 'GET /healthz answered 500, expected 200' } : { ok: true });
    engine.act(id, 'rollback', 'alice', '');
    fleet.pump(engine);
    expect(store.getRelease(id).status).toBe('Rollback failed');
    expect(steps().filter((s) => s.instance === 'b1').at(-1)).toMatchObject({
      status: 'failed',
      phase: 'rollback',
      stepStatus: 'failed',
      error: 'rollback failed: health: GET /healthz answered 500, expected 200',
    });
  });
});
