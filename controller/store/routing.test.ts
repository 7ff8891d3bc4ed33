// The store's routing side against a real SQLite file: rules with their change records, what a release decides at
// create (moves the default? leaves a routed edition active nowhere?), agents' addresses and changed instances.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { planBatches } from '../domain/planner.js';
import type { RouteRecord } from '../domain/routing.js';
import { compileReleaseSpec } from '../domain/spec.js';
import { AlreadyExistsError, Store, type AgentHello } from './store.js';

let dir: string;
let store: Store;

function hello(id: string, group: string, edition: string, o: Partial<AgentHello> = {}): AgentHello {
  return {
    agentId: id, host: id, group, labels: {}, bootId: 'b', version: 'v', address: `10.0.0.${id.slice(1)}`,
    instances: [{ app: 'shop', servicePort: 8000, activeEdition: edition, keptEditions: [edition], processState: 'running', quiesced: false }],
    ...o,
  };
}

function install(name: string): void {
  store.installEdition({ app: 'shop', name, description: '', url: 'http://x', sha256: 'a'.repeat(64), size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
}

function route(o: Partial<RouteRecord> = {}): RouteRecord {
  return { id: 'rt-1', app: 'shop', edition: '2.0', kind: 'header', name: 'X-Beta', value: '1', percent: 0, priority: 0, createdUnixMs: 5, createdBy: 'ops', ...o };
}

const change = { atUnixMs: 5, actor: 'ops', comment: 'beta users' };

function create(edition: string, group: string, o: { id?: string; force?: boolean; strategy?: string } = {}) {
  const spec = compileReleaseSpec({ app: 'shop', edition, group, batches: 1, force: o.force });
  return store.createRelease({
    id: o.id ?? `r-${edition}-${group}`, spec, actor: 'cli', now: 10,
    plan: ({ instances }) => planBatches(spec, instances.map((i) => ({ id: i.agentId, group: i.group }))),
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-routing-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  store.createApp({ name: 'shop', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  for (const e of ['1.0', '2.0', '3.0']) install(e);
  // h1, h2 (east) and h3 (west) run 1.0; h4 (pilot) runs 2.0.
  store.markAgentConnected(hello('h1', 'east', '1.0'), 1);
  store.markAgentConnected(hello('h2', 'east', '1.0'), 1);
  store.markAgentConnected(hello('h3', 'west', '1.0'), 1);
  store.markAgentConnected(hello('h4', 'pilot', '2.0'), 1);
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('routes', () => {
  it('adds, lists in evaluation order and removes rules, each with a change record', () => {
    store.routing.addRoute(route({ id: 'rt-b', priority: 10 }), change);
    store.routing.addRoute(route({ id: 'rt-a', kind: 'path-prefix', name: '', value: '/beta', priority: -1, createdUnixMs: 6 }), change);
    expect(store.routing.listRoutes('shop').map((r) => r.id)).toEqual(['rt-a', 'rt-b']);
    expect(store.routing.removeRoute('shop', 'rt-b', { ...change, comment: 'done' })).toMatchObject({ id: 'rt-b', kind: 'header' });
    expect(store.routing.listRoutes('shop').map((r) => r.id)).toEqual(['rt-a']);
    expect(store.history('shop').filter((c) => c.action.startsWith('route')).map((c) => [c.action, c.actor, c.comment, c.result])).toEqual([
      ['route-add', 'ops', 'beta users', 'added route rt-b: header X-Beta=1 → edition 2.0 (priority 10)'],
      ['route-add', 'ops', 'beta users', 'added route rt-a: path-prefix /beta → edition 2.0 (priority -1)'],
      ['route-remove', 'ops', 'done', 'removed route rt-b: header X-Beta=1 → edition 2.0'],
    ]);
  });

  const refusals: Array<[string, Partial<RouteRecord>, Function, RegExp]> = [
    ['an unknown app', { app: 'nope' }, NotFoundError, /app 'nope' does not exist/],
    ['an unknown edition', { edition: '9.9' }, NotFoundError, /edition '9\.9' of app 'shop' does not exist/],
    ['an edition active nowhere', { edition: '3.0' }, ConflictError, /^edition 3\.0 of shop is active nowhere; release it to a group first$/],
  ];
  it.each(refusals)('refuses %s, writing nothing', (_name, o, type, message) => {
    expect(() => store.routing.addRoute(route(o), change)).toThrow(type as never);
    expect(() => store.routing.addRoute(route(o), change)).toThrow(message);
    expect(store.routing.listRoutes('shop')).toEqual([]);
    expect(store.history('shop').filter((c) => c.action === 'route-add')).toEqual([]);
  });

  it('refuses a rule matching what another matches, and percent rules over 100 in total', () => {
    store.routing.addRoute(route(), change);
    expect(() => store.routing.addRoute(route({ id: 'rt-2', name: 'x-beta', edition: '1.0' }), change)).toThrow(AlreadyExistsError);
    store.routing.addRoute(route({ id: 'rt-p1', kind: 'percent', name: '', value: '', percent: 60 }), change);
    expect(() => store.routing.addRoute(route({ id: 'rt-p2', kind: 'percent', name: '', value: '', percent: 41 }), change)).toThrow(/would add up to 101%/);
    store.routing.addRoute(route({ id: 'rt-p3', kind: 'percent', name: '', value: '', percent: 40 }), change);
  });

  it('refuses to remove a rule that is not there', () => {
    expect(() => store.routing.removeRoute('shop', 'rt-x', change)).toThrow("route 'rt-x' of app 'shop' does not exist");
    expect(() => store.routing.removeRoute('nope', 'rt-x', change)).toThrow(NotFoundError);
  });
});

describe('what a release decides at create', () => {
  it('moves the default when its target covers every instance on it, from the default it had', () => {
    // Default now: every edition some instance runs (no release decided yet).
    const pilot = create('3.0', 'pilot');
    expect(pilot).toMatchObject({ takesDefault: false, fromDefault: ['1.0', '2.0'] });
    store.db.prepare(`UPDATE releases SET status = 'Released' WHERE id = ?`).run(pilot.id);
    const all = create('3.0', 'all');
    expect(all).toMatchObject({ takesDefault: true, fromDefault: ['1.0', '2.0'] });
    expect(store.getRelease(all.id)).toMatchObject({ takesDefault: true, fromDefault: ['1.0', '2.0'], routePhase: '' });
  });

  it('refuses to leave an edition that rules name active nowhere, unless forced (and never stores the force)', () => {
    store.routing.addRoute(route(), change);
    expect(() => create('1.0', 'pilot')).toThrow(ConflictError);
    expect(() => create('1.0', 'pilot')).toThrow(/would leave edition 2\.0 of shop active nowhere while routing rules name it/);
    expect(store.listReleases('shop')).toEqual([]);
    // A release that keeps 2.0 somewhere goes ahead.
    create('3.0', 'east');
    const forced = create('1.0', 'pilot', { force: true });
    expect(store.getRelease(forced.id).spec.force).toBeUndefined();
  });

  it('lists the groups each edition runs in and the default editions', () => {
    const activity = store.routing.editionActivity('shop');
    expect(Object.fromEntries(activity.groups)).toEqual({ '1.0': ['east', 'west'], '2.0': ['pilot'] });
    expect(activity.defaults).toEqual(['1.0', '2.0']);
    // Each agent keeps its running edition on disk (hello); the counts come from every instance's report.
    expect(Object.fromEntries(activity.kept)).toEqual({ '1.0': 3, '2.0': 1 });
    const east = create('3.0', 'all');
    expect(store.routing.editionActivity('shop').defaults).toEqual(['1.0', '2.0']);
    store.db.prepare(`UPDATE releases SET status = 'Releasing' WHERE id = ?`).run(east.id);
    expect(store.routing.editionActivity('shop').defaults).toEqual(['1.0', '2.0', '3.0']);
  });
});

describe('what the routers read', () => {
  it('keeps the address each agent reaches its gates at, and the instances changed since a time', () => {
    const t0 = Date.now();
    expect(store.routing.instances('shop').map((i) => [i.agentId, i.address, i.servicePort])).toEqual([
      ['h1', '10.0.0.1', 8000], ['h2', '10.0.0.2', 8000], ['h3', '10.0.0.3', 8000], ['h4', '10.0.0.4', 8000],
    ]);
    store.markAgentConnected(hello('h2', 'east', '1.0', { address: '192.168.1.2' }), t0 + 50);
    expect(store.routing.instancesChangedSince('shop', t0 + 50).map((i) => [i.agentId, i.address])).toEqual([['h2', '192.168.1.2']]);
    expect(store.routing.instancesChangedSince('shop', t0 + 51)).toEqual([]);
  });

  it('tells listeners after an instance is removed', () => {
    const removed: string[] = [];
    const stop = store.onInstanceRemoved((app, agent) => removed.push(`${app}/${agent}`));
    store.markAgentConnected(hello('h3', 'west', '', { instances: [] }), 2);
    stop();
    store.markAgentConnected(hello('h4', 'pilot', '', { instances: [] }), 2);
    expect(removed).toEqual(['shop/h3']);
  });

  it('holds batch 1 of an atomic release in its first half', () => {
    const release = create('3.0', 'east');
    expect(store.routing.head('shop')).toMatchObject({ healthPath: '/healthz', held: new Set() });
    store.db.prepare(`UPDATE releases SET route_phase = 'first-half' WHERE id = ?`).run(release.id);
    expect([...store.routing.head('shop').held].sort()).toEqual(['h1', 'h2']);
    expect(() => store.routing.head('nope')).toThrow(NotFoundError);
  });
});
