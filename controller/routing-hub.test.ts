// The routing hub against a real store (SQLite in a temp dir) and fake WatchRouting streams: the full update first,
// then the app again when its head changes and single instances when their rows do, acks, and the engine's sync.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BadInputError, NotFoundError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import type { RoutingUpdate } from '../proto/gen/fleetwave/v1/admin.js';
import { waitFor } from '../test/harness/wait.js';
import { planBatches } from './domain/planner.js';
import { compileReleaseSpec } from './domain/spec.js';
import { RoutingHub } from './routing-hub.js';
import { Store, type AgentHello } from './store/store.js';

class FakeCall extends EventEmitter {
  readonly updates: RoutingUpdate[] = [];
  ended = false;
  constructor(readonly request: { apps: string[]; routerId: string }) {
    super();
  }
  write(update: RoutingUpdate): boolean {
    this.updates.push(update);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  get last(): RoutingUpdate {
    return this.updates[this.updates.length - 1]!;
  }
}

let dir: string;
let store: Store;
let hub: RoutingHub;
const log = createLogger({ name: 'routing-hub-test', level: 'silent' });

function hello(id: string, group: string, edition: string, o: { processState?: string; quiesced?: boolean; address?: string; apps?: string[] } = {}): AgentHello {
  return {
    agentId: id, host: id, group, labels: {}, bootId: 'b', version: 'v', address: o.address ?? `10.0.0.${id.slice(1)}`,
    instances: (o.apps ?? ['shop']).map((app) => ({
      app, servicePort: 8000, activeEdition: edition, keptEditions: [edition], processState: o.processState ?? 'running', quiesced: o.quiesced ?? false,
    })),
  };
}

function watch(apps: string[], routerId = 'r1'): FakeCall {
  const call = new FakeCall({ apps, routerId });
  hub.watch(call as never);
  return call;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-hub-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  store.createApp({ name: 'shop', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  for (const e of ['1.0', '2.0']) {
    store.installEdition({ app: 'shop', name: e, description: '', url: 'http://x', sha256: 'a'.repeat(64), size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  }
  store.markAgentConnected(hello('h1', 'blue', '1.0'), Date.now());
  store.markAgentConnected(hello('h2', 'blue', '1.0'), Date.now());
  store.markAgentConnected(hello('h3', 'green', '2.0'), Date.now());
  hub = new RoutingHub({
    source: store.routing,
    appOfRelease: (id) => store.getRelease(id).app,
    hasApp: (app) => store.hasApp(app),
    logger: log,
    pollIntervalMs: 10,
    syncDeadlineMs: 300,
  });
  store.onInstanceRemoved((app, instance) => hub.instanceRemoved(app, instance));
});

afterEach(() => {
  hub.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('RoutingHub', () => {
  it('sends every asked app whole first', () => {
    const call = watch(['shop']);
    expect(call.updates).toHaveLength(1);
    const first = call.updates[0]!;
    expect(first.full).toBe(true);
    expect(first.apps).toHaveLength(1);
    expect(first.apps[0]).toMatchObject({ app: 'shop', defaultEditions: ['1.0', '2.0'], routes: [], healthPath: '/healthz' });
    expect(first.apps[0]!.instances.map((i) => [i.instance, i.group, i.address, i.port, i.edition, i.state, i.held])).toEqual([
      ['h1', 'blue', '10.0.0.1', 8000, '1.0', 'ready', false],
      ['h2', 'blue', '10.0.0.2', 8000, '1.0', 'ready', false],
      ['h3', 'green', '10.0.0.3', 8000, '2.0', 'ready', false],
    ]);
    expect(hub.routersFor('shop')).toBe(1);
    expect(hub.routersFor('other')).toBe(0);
  });

  it('refuses a watch of no app, of an unknown app, or without a router id, before sending anything', () => {
    expect(() => watch([])).toThrow(BadInputError);
    expect(() => watch(['shop', 'nope'])).toThrow(new NotFoundError("app 'nope' does not exist"));
    expect(() => watch(['shop'], '')).toThrow(/router id '' must match/);
    expect(hub.routersFor('shop')).toBe(0);
  });

  it('sends a changed instance alone, and nothing for a row rewritten unchanged', async () => {
    const call = watch(['shop']);
    const version = call.last.version;
    store.markAgentConnected(hello('h1', 'blue', '1.0', { quiesced: true }), Date.now());
    store.markAgentConnected(hello('h2', 'blue', '1.0'), Date.now());
    await waitFor('the instance delta', () => call.updates.length > 1, 5_000);
    expect(call.last).toMatchObject({ full: false, apps: [], version: version + 1 });
    expect(call.last.instances.map((i) => [i.instance, i.state])).toEqual([['h1', 'drain']]);
  });

  it('tells of a removed instance', async () => {
    const call = watch(['shop']);
    store.markAgentConnected(hello('h2', 'blue', '1.0', { apps: [] }), Date.now());
    await waitFor('the removal', () => call.updates.length > 1, 5_000);
    expect(call.last.instances).toEqual([expect.objectContaining({ instance: 'h2', removed: true })]);
  });

  it('sends the app again, whole, when its rules or default editions change', async () => {
    const call = watch(['shop']);
    store.routing.addRoute(
      { id: 'rt-1', app: 'shop', edition: '2.0', kind: 'header', name: 'X-Beta', value: '1', percent: 0, priority: 0, createdUnixMs: 1, createdBy: 'ops' },
      { atUnixMs: 1, actor: 'ops', comment: '' },
    );
    hub.kick('shop');
    await waitFor('the app again', () => call.updates.length > 1, 5_000);
    expect(call.last.apps[0]).toMatchObject({ app: 'shop', routes: [expect.objectContaining({ id: 'rt-1', kind: 'header', edition: '2.0' })] });
    expect(call.last.apps[0]!.instances).toHaveLength(3);
    // A kick that changes nothing sends nothing.
    const count = call.updates.length;
    hub.kick('shop');
    await new Promise((r) => setImmediate(r));
    expect(call.updates).toHaveLength(count);
  });

  it('holds batch 1 of an atomic release in its first half out of rotation', async () => {
    const call = watch(['shop']);
    const spec = compileReleaseSpec({ app: 'shop', edition: '2.0', group: 'blue', batches: 1 });
    const release = store.createRelease({ id: 'r-1', spec, actor: 't', now: 1, plan: ({ instances }) => planBatches(spec, instances.map((i) => ({ id: i.agentId, group: i.group }))) });
    store.db.prepare(`UPDATE releases SET route_phase = 'first-half' WHERE id = ?`).run(release.id);
    hub.releaseChanged(release.id);
    await waitFor('the app with held instances', () => call.last.apps.length > 0 && call.last.apps[0]!.instances.some((i) => i.held), 5_000);
    expect(call.last.apps[0]!.instances.map((i) => [i.instance, i.state, i.held])).toEqual([
      ['h1', 'drain', true],
      ['h2', 'drain', true],
      ['h3', 'ready', false],
    ]);
  });

  it('calls a sync back once every router fronting the app acked, or at the deadline', async () => {
    const a = watch(['shop'], 'ra');
    const b = watch(['shop'], 'rb');
    expect(hub.routersFor('shop')).toBe(2);
    let applied = 0;
    hub.sync('shop', () => applied++);
    const target = a.last.version;
    hub.ack({ routerId: 'ra', version: target });
    await new Promise((r) => setImmediate(r));
    expect(applied).toBe(0);
    hub.ack({ routerId: 'rb', version: target });
    await waitFor('the sync callback', () => applied === 1, 5_000);
    expect(b.last.version).toBe(target);

    // A router that never acks holds a sync until the deadline, then it goes on anyway, once.
    hub.sync('shop', () => applied++);
    await waitFor('the deadline', () => applied === 2, 5_000);
    expect(hub.stats().lag.map((l) => l.router).sort()).toEqual(['ra', 'rb']);
  });

  it('calls a sync back at once when no router fronts the app, and when the lagging router goes away', async () => {
    let applied = 0;
    hub.sync('shop', () => applied++);
    await waitFor('the callback without routers', () => applied === 1, 1_000);
    const call = watch(['shop'], 'ra');
    hub.sync('shop', () => applied++);
    call.emit('cancelled');
    await waitFor('the callback once the router left', () => applied === 2, 1_000);
    expect(hub.routersFor('shop')).toBe(0);
  });

  it('refuses an ack of a version never sent; versions grow with every update', async () => {
    const call = watch(['shop']);
    expect(() => hub.ack({ routerId: 'r1', version: call.last.version + 1 })).toThrow(/was never sent/);
    hub.ack({ routerId: 'r1', version: call.last.version });
    store.markAgentConnected(hello('h3', 'green', '2.0', { processState: 'stopped' }), Date.now());
    await waitFor('a delta', () => call.updates.length > 1, 5_000);
    expect(call.updates.map((u) => u.version)).toEqual([call.updates[0]!.version, call.updates[0]!.version + 1]);
    expect(call.last.instances.map((i) => [i.instance, i.state])).toEqual([['h3', 'maint']]);
  });

  it('ends every stream when the controller stops', () => {
    const call = watch(['shop']);
    hub.stop();
    expect(call.ended).toBe(true);
    expect(hub.routersFor('shop')).toBe(0);
  });
});
