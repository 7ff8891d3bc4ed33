// The atomic strategy in the engine: router gates before batch 1 (first half out of rotation) and before batch 2 (the
// switch), against a real SQLite file, the fake fleet and a fake RouterGate that acks only when the test says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConflictError } from '../../common/errors.js';
import { createLogger } from '../../common/logger.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { Store } from '../store/store.js';
import { ReleaseEngine } from './engine.js';
import { EngineInbox } from './inbox.js';
import { baseSpec, FakeFleet, FakeRouters, HOSTS, seed, type Sent } from './fake-fleet.js';

const logger = createLogger({ name: 'atomic-test', level: 'silent' });

let dir: string;
let store: Store;
let engine: ReleaseEngine;
let fleet: FakeFleet;
let routers: FakeRouters;
let events: Array<{ reason: string; data: Record<string, unknown> }>;

/** `router` null: an engine without routing. */
function newEngine(router: FakeRouters | null = routers): ReleaseEngine {
  const e = new ReleaseEngine({ store, sink: fleet, logger, router: router ?? undefined, publish: (_app, _id, reason, data) => void events.push({ reason, data }) });
  e.start();
  return e;
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-atomic-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  fleet = new FakeFleet();
  seed(store, '1.0', fleet);
  routers = new FakeRouters(store, fleet.log);
  events = [];
  engine = newEngine();
});

afterEach(() => {
  engine.stop();
  store.close();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

/** An atomic release of group east: batch 1 = a1, a2; batch 2 = a3, a4. */
function atomic(spec: Partial<ReleaseSpec> = {}): string {
  return engine.createRelease(baseSpec({ strategy: 'atomic', group: 'east', ...spec }), 'cli').id;
}

const release = (id: string) => store.getRelease(id);
const batch = (id: string, n: number) => store.getReleaseDetail(id).batches[n - 1]!;
const at = (line: string) => fleet.log.indexOf(line);
const sentTo = (agents: string[], kind: string) => fleet.sent.filter((s) => agents.includes(s.agentId) && s.kind === kind);
const reasons = () => events.map((e) => e.reason);

describe('an atomic release', () => {
  it('takes the first half out of rotation, moves it, switches, then moves the second half', () => {
    const id = atomic();
    expect(store.getReleaseDetail(id).batches.map((b) => b.instances)).toEqual([
      ['a1', 'a2'],
      ['a3', 'a4'],
    ]);
    fleet.pump(engine);
    // Batch 1 has its packages: the routers are asked to hold it out; nothing of it moves before they applied that.
    expect(release(id)).toMatchObject({ status: 'Releasing', routePhase: 'first-half', waitingFor: 'router: first half out of rotation before batch 1' });
    expect(batch(id, 1)).toMatchObject({ status: 'waiting', checkpoint: 'router' });
    expect(routers.syncs).toEqual(['shop first-half']);
    expect(sentTo(['a1', 'a2', 'a3', 'a4'], 'Quiesce')).toEqual([]);

    routers.ack();
    fleet.pump(engine);
    // Batch 1 is done: the switch is asked for; batch 2 does not move before it is applied.
    expect(release(id)).toMatchObject({ status: 'Releasing', routePhase: 'switched', waitingFor: 'router: switch to 2.0 before batch 2' });
    expect(batch(id, 1).status).toBe('done');
    expect(batch(id, 2)).toMatchObject({ status: 'waiting', checkpoint: 'router' });
    expect(routers.syncs).toEqual(['shop first-half', 'shop switched']);
    expect(sentTo(['a3', 'a4'], 'Quiesce')).toEqual([]);
    expect(reasons()).not.toContain('switched');

    routers.ack();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Released', routePhase: 'switched', waitingFor: '' });
    // The order at the routers and the agents: first half out, batch 1 moves, switch applied, batch 2 moves.
    expect(at('applied first-half')).toBeLessThan(at('send Quiesce a1'));
    expect(at('result HealthCheck a2')).toBeLessThan(at('sync switched'));
    expect(at('applied switched')).toBeLessThan(at('send Quiesce a3'));
    for (const h of ['a1', 'a2', 'a3', 'a4']) expect(fleet.kinds(h)).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
    expect(events.filter((e) => e.reason === 'switched').map((e) => e.data)).toEqual([{ edition: '2.0', from: ['1.0'] }]);
    // The release ended: the routers hear of it (no wait), and no router gate published a checkpoint for operators.
    expect(routers.syncs).toEqual(['shop first-half', 'shop switched', 'shop switched']);
    expect(reasons()).not.toContain('checkpoint.waiting');
  });

  it('asks the routers once per phase however many inputs arrive while it waits', () => {
    fleet.answer = (s) => (s.kind === 'DownloadPackage' && ['a3', 'a4'].includes(s.agentId) ? 'hold' : { ok: true });
    const id = atomic();
    fleet.pump(engine);
    expect(release(id).routePhase).toBe('first-half');
    // Pre-staged downloads of batch 2 answer while batch 1 is held.
    for (const s of fleet.held.splice(0)) fleet.reply(engine, s, { ok: true });
    engine.reconcile(id);
    expect(routers.syncs).toEqual(['shop first-half']);
  });

  it('holds batch 1 for its downloads before taking it out of rotation', () => {
    fleet.answer = (s) => (s.kind === 'DownloadPackage' && s.agentId === 'a2' ? 'hold' : { ok: true });
    const id = atomic();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ routePhase: '', waitingFor: 'downloads before batch 1' });
    expect(routers.syncs).toEqual([]);
    fleet.reply(engine, fleet.held.pop()!, { ok: true });
    expect(release(id)).toMatchObject({ routePhase: 'first-half', waitingFor: 'router: first half out of rotation before batch 1' });
    expect(routers.syncs).toEqual(['shop first-half']);
  });

  it('runs an approval of batch 1 before the first half leaves the rotation', () => {
    const id = atomic({ approvalBefore: [1] });
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ routePhase: '', waitingFor: 'approval before batch 1' });
    expect(routers.syncs).toEqual([]);
    engine.act(id, 'approve', 'alice', 'go');
    expect(release(id)).toMatchObject({ routePhase: 'first-half', waitingFor: 'router: first half out of rotation before batch 1' });
    // The operator's checkpoint keeps its name and who passed it.
    expect(batch(id, 1)).toMatchObject({ status: 'waiting', checkpoint: 'approval', checkpointBy: 'alice' });
    routers.ack();
    fleet.pump(engine);
    expect(release(id).routePhase).toBe('switched');
  });

  it('holds batch 2 at its approval after the switch is applied', () => {
    const id = atomic({ approvalBefore: [2] });
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    expect(() => engine.act(id, 'approve', 'alice', '')).toThrow(/waits for router before batch 2, not approval/);
    routers.ack();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Releasing', routePhase: 'switched', waitingFor: 'approval before batch 2' });
    expect(batch(id, 2)).toMatchObject({ status: 'waiting', checkpoint: 'approval' });
    expect(sentTo(['a3', 'a4'], 'Quiesce')).toEqual([]);
    const switched = reasons().indexOf('switched');
    expect(switched).toBeGreaterThan(-1);
    expect(reasons().indexOf('checkpoint.waiting')).toBeGreaterThan(switched);
    engine.act(id, 'approve', 'alice', 'new edition looks good');
    fleet.pump(engine);
    expect(release(id).status).toBe('Released');
  });

  it('switches before the automatic wait between batches', () => {
    const id = atomic({ waitMs: 30_000 });
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    routers.ack();
    expect(release(id).waitingFor).toMatch(/^batch 2 \(automatic wait until/);
    vi.advanceTimersByTime(30_000);
    fleet.pump(engine);
    expect(release(id).status).toBe('Released');
    expect(routers.syncs.filter((s) => s === 'shop switched').length).toBe(2);
  });

  it('a first-batch failure puts the first half back in rotation on the old edition, with no switch', () => {
    let failed = false;
    fleet.answer = (s: Sent) => {
      if (s.kind !== 'HealthCheck' || s.agentId !== 'a1' || failed) return { ok: true };
      failed = true;
      return { ok: false, error: 'got 500' };
    };
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    const r = release(id);
    expect(r.status).toBe('Release failed');
    // Reverted, then the route phase goes back: nothing held, the default stays on the old edition.
    expect(r.routePhase).toBe('');
    expect(routers.syncs).toEqual(['shop first-half', 'shop ']);
    expect(at('result HealthCheck a2')).toBeLessThan(at("sync ''"));
    expect(store.listInstances('shop').filter((i) => i.group === 'east').map((i) => i.activeEdition)).toEqual(['1.0', '1.0', '1.0', '1.0']);
    expect(sentTo(['a3', 'a4'], 'Quiesce')).toEqual([]);
    expect(reasons()).not.toContain('switched');
  });

  it('a cancel while the first half is held ends the release and puts it back in rotation', () => {
    const id = atomic();
    fleet.pump(engine);
    engine.act(id, 'cancel', 'alice', '');
    expect(release(id)).toMatchObject({ status: 'Release failed', routePhase: '', waitingFor: '' });
    expect(routers.syncs).toEqual(['shop first-half', 'shop ']);
    // The late ack of the first half changes nothing.
    routers.ack();
    fleet.pump(engine);
    expect(sentTo(['a1', 'a2'], 'Quiesce')).toEqual([]);
    expect(release(id).status).toBe('Release failed');
  });

  it('a retry after a first-batch failure takes the first half out of rotation again', () => {
    let failed = false;
    fleet.answer = (s: Sent) => {
      if (s.kind !== 'HealthCheck' || s.agentId !== 'a1' || failed) return { ok: true };
      failed = true;
      return { ok: false, error: 'got 500' };
    };
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Release failed', routePhase: '' });
    const quiesces = sentTo(['a1'], 'Quiesce').length;
    engine.act(id, 'retry', 'alice', '');
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Releasing', routePhase: 'first-half', waitingFor: 'router: first half out of rotation before batch 1' });
    expect(sentTo(['a1'], 'Quiesce').length).toBe(quiesces);
    routers.ack();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Released', routePhase: 'switched' });
  });

  it('counts only the ack of the newest sync: an older one may predate what the routers must apply now', () => {
    const id = atomic();
    fleet.pump(engine);
    engine.act(id, 'cancel', 'alice', '');
    engine.act(id, 'retry', 'alice', '');
    expect(release(id).routePhase).toBe('first-half');
    expect(routers.syncs).toEqual(['shop first-half', 'shop ', 'shop first-half']);
    // The first sync's ack: the routers may still apply the cancel's sync after it.
    routers.pending.shift()!.applied();
    expect(batch(id, 1).status).toBe('waiting');
    routers.ack();
    expect(batch(id, 1).status).toBe('running');
  });

  it('a batch 2 cancelled while the switch was unacked asks for it again when retried', () => {
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    engine.act(id, 'cancel', 'alice', '');
    expect(release(id)).toMatchObject({ status: 'Release failed', routePhase: 'switched' });
    routers.pending.splice(0);
    engine.act(id, 'retry', 'alice', '');
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    expect(sentTo(['a3', 'a4'], 'Quiesce')).toEqual([]);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).status).toBe('Released');
    expect(events.filter((e) => e.reason === 'switched').length).toBe(1);
  });

  it('a release failed after the switch keeps it', () => {
    fleet.answer = (s) => (s.kind === 'RestartApp' && s.agentId === 'a3' ? { ok: false, error: 'spawn failed' } : { ok: true });
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Release failed', routePhase: 'switched' });
  });

  it('tells the routers when a rollback after the switch starts and when it ends', () => {
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).status).toBe('Released');
    const before = routers.syncs.length;
    engine.act(id, 'rollback', 'alice', '');
    expect(routers.syncs.length).toBe(before + 1);
    // Both editions serve while it rolls back (the hub derives that from the status): nothing waits for the routers.
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Rolled back', routePhase: 'switched' });
    expect(routers.syncs.length).toBe(before + 2);
  });

  it('waits for a paused release to resume before it moves on, and asks the routers again then', () => {
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    engine.act(id, 'pause', 'alice', '');
    expect(release(id).status).toBe('Suspended');
    routers.ack();
    fleet.pump(engine);
    expect(sentTo(['a3', 'a4'], 'Quiesce')).toEqual([]);
    engine.act(id, 'resume', 'alice', '');
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    expect(routers.syncs.filter((s) => s === 'shop switched').length).toBe(2);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).status).toBe('Released');
    expect(events.filter((e) => e.reason === 'switched').length).toBe(1);
  });

  it('a one-instance target is one batch with no router gate', () => {
    store.markAgentConnected(
      {
        agentId: 'p1',
        host: 'p1',
        group: 'pilot',
        labels: {},
        bootId: 'boot',
        version: 'test',
        instances: [{ app: 'shop', servicePort: 8080, activeEdition: '1.0', keptEditions: ['1.0'], processState: 'running', quiesced: false }],
      },
      Date.now(),
    );
    const id = atomic({ group: 'pilot' });
    expect(store.getReleaseDetail(id).batches.map((b) => b.instances)).toEqual([['p1']]);
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Released', routePhase: '' });
    expect(routers.syncs).toEqual(['shop ']);
  });

  it('spans every group of the target together, each instance keeping its group', () => {
    const id = atomic({ group: 'all' });
    const detail = store.getReleaseDetail(id);
    expect(detail.batches.map((b) => [b.group, b.instances])).toEqual([
      ['east', ['a1', 'a2', 'a3', 'a4']],
      ['west', ['b1', 'b2', 'b3', 'b4']],
    ]);
    expect(new Set(detail.instances.map((i) => `${i.instance} ${i.group}`))).toEqual(new Set(HOSTS.map((h) => `${h.id} ${h.group}`)));
  });
});

describe('creating an atomic release', () => {
  it('is refused while no router fronts the app, and the refusal is in the history', () => {
    routers.count = 0;
    const create = () => atomic();
    expect(create).toThrow(ConflictError);
    expect(create).toThrow("atomic needs a router fronting 'shop'; none is connected");
    expect(store.listReleases('shop')).toEqual([]);
    expect(store.history('shop').map((c) => c.result)).toContain("refused: atomic needs a router fronting 'shop'; none is connected");
    // Other strategies do not need one.
    expect(() => engine.createRelease(baseSpec({ group: 'east' }), 'cli')).not.toThrow();
  });

  it('is refused by an engine without routing, and a bad spec is still refused as such first', () => {
    engine.stop();
    engine = newEngine(null);
    expect(() => atomic()).toThrow("atomic needs a router fronting 'shop'; none is connected");
    expect(() => atomic({ group: 'north' })).toThrow(/group 'north' has no instance/);
    expect(() => engine.createRelease(baseSpec({ app: 'nope', strategy: 'atomic' }), 'cli')).toThrow(/app 'nope'/);
  });
});

describe('a controller restart during an atomic release', () => {
  function restart(): void {
    engine.stop();
    store.close();
    store = Store.open(join(dir, 'fleetwave.db'));
    routers = new FakeRouters(store, fleet.log);
    engine = newEngine();
  }

  it('asks the routers again for the phase it waits on, and runs no step twice', () => {
    const id = atomic();
    fleet.pump(engine);
    expect(routers.syncs).toEqual(['shop first-half']);
    restart();
    expect(routers.syncs).toEqual(['shop first-half']);
    routers.ack();
    fleet.pump(engine);
    expect(release(id).waitingFor).toBe('router: switch to 2.0 before batch 2');
    restart();
    expect(routers.syncs).toEqual(['shop switched']);
    routers.ack();
    fleet.pump(engine);
    expect(release(id)).toMatchObject({ status: 'Released', routePhase: 'switched' });
    for (const h of ['a1', 'a2', 'a3', 'a4']) expect(fleet.kinds(h)).toEqual(['DownloadPackage', 'Quiesce', 'RestartApp', 'HealthCheck']);
    const ids = fleet.sent.map((s) => s.command.commandId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('drops an ack that comes after the engine stopped; the restarted one asks again', () => {
    const id = atomic();
    fleet.pump(engine);
    const stale = routers;
    restart();
    stale.ack();
    expect(batch(id, 1).status).toBe('waiting');
    routers.ack();
    expect(batch(id, 1).status).toBe('running');
  });
});

describe('a sync the routing hub cannot take', () => {
  it('leaves the release held, and a later pass asks again', () => {
    const sync = routers.sync.bind(routers);
    routers.sync = () => {
      throw new Error('hub down');
    };
    const id = atomic();
    fleet.pump(engine);
    expect(release(id).waitingFor).toBe('router: first half out of rotation before batch 1');
    routers.sync = sync;
    engine.reconcile(id);
    expect(routers.syncs).toEqual(['shop first-half']);
    routers.ack();
    expect(batch(id, 1).status).toBe('running');
  });
});

describe('the routers ack through the inbox', () => {
  it('queues behind what arrived before it and moves the release once handed over', () => {
    const inbox = new EngineInbox(engine);
    engine.attachInbox(inbox);
    const id = atomic();
    fleet.pump(engine);
    routers.ack();
    expect(batch(id, 1).status).toBe('waiting');
    inbox.flush();
    expect(batch(id, 1).status).toBe('running');
    inbox.close();
  });
});
