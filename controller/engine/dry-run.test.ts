// A release's dry run and an app's update against a real SQLite file: the dry run plans what a create would (the same
// batches, the same refusals) and leaves nothing behind; an update is refused while a release of the app is active.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { changedAppFields } from '../admin-service.js';
import { Store } from '../store/store.js';
import { ReleaseEngine } from './engine.js';
import { baseSpec, FakeFleet, seed } from './fake-fleet.js';

const logger = createLogger({ name: 'dry-run-test', level: 'silent' });

let dir: string;
let store: Store;
let engine: ReleaseEngine;
let fleet: FakeFleet;
let published: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-dry-run-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  seed(store);
  fleet = new FakeFleet();
  published = [];
  engine = new ReleaseEngine({ store, sink: fleet, logger, publish: (_app, id, reason) => published.push(`${id} ${reason}`) });
  engine.start();
});

afterEach(() => {
  engine.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What a create leaves anywhere: releases, change records, commands sent, events published. */
function traces() {
  return { releases: store.listReleases('shop').length, changes: store.history('shop').length, sent: fleet.sent.length, published: published.length };
}

describe('release dry run', () => {
  it('plans the batches a create makes, with an empty id, and leaves no trace', () => {
    const before = traces();
    const plan = engine.planRelease(baseSpec({ approvalBefore: [2] }), 'cli');
    expect(traces()).toEqual(before);
    expect(plan.release.id).toBe('');
    const real = store.getReleaseDetail(engine.createRelease(baseSpec({ approvalBefore: [2] }), 'cli').id);
    const shape = (d: typeof plan) => d.batches.map((b) => ({ number: b.number, group: b.group, instances: b.instances }));
    expect(shape(plan)).toEqual(shape(real));
    expect(plan.release.spec).toEqual(real.release.spec);
  });

  it('is refused as the create would be, and records no refusal', () => {
    expect(() => engine.planRelease(baseSpec({ batches: 9 }), 'cli')).toThrow(/9 batches for group '\S+' but it has only \d instance\(s\)/);
    engine.createRelease(baseSpec(), 'cli');
    const before = traces();
    expect(() => engine.planRelease(baseSpec(), 'cli')).toThrow(/is still active for group 'all'; finish or cancel it first/);
    expect(traces()).toEqual(before);
  });
});

describe('app update', () => {
  it('names the fields that differ, env order aside', () => {
    const app = store.getApp('shop');
    expect(changedAppFields(app, { ...app, env: {}, createdUnixMs: 99 })).toEqual([]);
    expect(changedAppFields({ ...app, env: { A: '1', B: '2' } }, { ...app, env: { B: '2', A: '1' } })).toEqual([]);
    expect(changedAppFields(app, { ...app, stopTimeoutMs: 1, healthPath: '/up' })).toEqual(['healthPath', 'stopTimeoutMs']);
  });

  it('replaces the definition with a change record, keeps its creation time, and is refused while a release is active', () => {
    const app = store.getApp('shop');
    const updated = store.updateApp({ ...app, stopTimeoutMs: 2000, createdUnixMs: 5 }, { atUnixMs: 7, actor: 'ops', result: 'updated: stopTimeoutMs' });
    expect(updated).toMatchObject({ stopTimeoutMs: 2000, createdUnixMs: app.createdUnixMs });
    expect(store.getApp('shop').stopTimeoutMs).toBe(2000);
    expect(store.history('shop').at(-1)).toMatchObject({ action: 'app-update', actor: 'ops', result: 'updated: stopTimeoutMs' });
    const id = engine.createRelease(baseSpec(), 'cli').id;
    expect(() => store.updateApp({ ...app, stopTimeoutMs: 3000 }, { atUnixMs: 8, actor: 'ops', result: 'x' })).toThrow(
      `app 'shop': release ${id} is still active; finish or cancel it before changing the app`,
    );
    expect(store.getApp('shop').stopTimeoutMs).toBe(2000);
  });
});
