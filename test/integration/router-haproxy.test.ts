// The router's reconciler against a real haproxy 2.6: routing updates go in as the controller would send them, and
// every assertion is made through requests to the frontend or haproxy's own state and counters.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingUpdate } from '../../proto/gen/fleetwave/v1/admin.js';
import { RoutingCache } from '../../router/cache.js';
import { ensureHaproxy } from '../../router/haproxy-process.js';
import { Reconciler, type PassResult } from '../../router/reconciler.js';
import { RuntimeApi, parseMapEntries } from '../../router/runtime.js';
import { appRouting, route, routed, update } from '../../router/test-fixtures.js';
import {
  editionsOf,
  freePort,
  get,
  HAPROXY_BIN,
  HAS_HAPROXY,
  serverStates,
  sessionsOf,
  silentLogger,
  startBackend,
  startHaproxy,
  type Backend,
  type Haproxy,
} from '../harness/router.js';
import { waitFor } from '../harness/wait.js';

/** A RuntimeApi that keeps every command it sent, so a test can see what one change cost. */
class RecordingApi extends RuntimeApi {
  sent: string[] = [];
  override run(commands: readonly string[]): Promise<string[]> {
    this.sent.push(...commands.filter((c) => !c.startsWith('show ') && !c.startsWith('fleetwave rules show')));
    return super.run(commands);
  }
}

describe.skipIf(!HAS_HAPROXY)('router against haproxy', () => {
  let dir: string;
  let haproxy: Haproxy;
  let port: number;
  let api: RecordingApi;
  let cache: RoutingCache;
  let reconciler: Reconciler;
  const backends: Record<string, Backend> = {};
  let version = 0;

  /** The instances as the controller would describe them, each on its tiny backend. */
  const instance = (name: string, fields: Parameters<typeof routed>[2] = {}) => routed(name, backends[name]!.edition, { address: '127.0.0.1', port: backends[name]!.port, ...fields });

  async function apply(u: Omit<RoutingUpdate, 'version'>): Promise<PassResult> {
    cache.applyUpdate({ ...u, version: ++version });
    const result = await reconciler.sync();
    expect(result.failures).toBe(0);
    await reconciler.idle();
    return result;
  }

  function full(fields: Parameters<typeof appRouting>[1] = {}, instances = ['a1', 'a2', 'b1', 'b2'].map((n) => instance(n))): Omit<RoutingUpdate, 'version'> {
    return { ...update(0), full: true, apps: [appRouting(instances, fields)] };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fw-rt-'));
    for (const [name, edition] of [['a1', '1.0'], ['a2', '1.0'], ['b1', '2.0'], ['b2', '2.0']] as const) backends[name] = await startBackend(name, edition);
    port = await freePort();
    haproxy = await startHaproxy(dir, { shop: port });
    api = new RecordingApi(haproxy.socket);
    cache = new RoutingCache(['shop']);
    reconciler = new Reconciler({ api, cache, apps: ['shop'], slots: 4, logger: silentLogger, resyncMs: 0 });
    await apply(full());
  });

  afterAll(async () => {
    reconciler?.stop();
    await haproxy?.kill();
    await Promise.all(Object.values(backends).map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends requests no rule matches to the default edition', async () => {
    expect(await editionsOf(port, 40)).toEqual({ '1.0': 40 });
  });

  it('routes by header (name in any case, exact value), 100% to its edition', async () => {
    await apply(full({ routes: [route({ kind: 'header', edition: '2.0', name: 'X-Validate', value: '1' })] }));
    expect(await editionsOf(port, 40, '/', { 'x-validate': '1' })).toEqual({ '2.0': 40 });
    expect(await editionsOf(port, 20, '/', { 'X-VALIDATE': '1' })).toEqual({ '2.0': 20 });
    expect(await editionsOf(port, 20, '/', { 'x-validate': '10' })).toEqual({ '1.0': 20 });
    expect(await editionsOf(port, 20)).toEqual({ '1.0': 20 });
  });

  it('routes by cookie and by path prefix (whole segments)', async () => {
    await apply(
      full({
        routes: [route({ kind: 'cookie', edition: '2.0', name: 'beta', value: 'yes' }), route({ kind: 'path-prefix', edition: '2.0', value: '/beta' })],
      }),
    );
    expect(await editionsOf(port, 40, '/', { cookie: 'a=1; beta=yes' })).toEqual({ '2.0': 40 });
    expect(await editionsOf(port, 20, '/', { cookie: 'beta=no' })).toEqual({ '1.0': 20 });
    expect(await editionsOf(port, 40, '/beta/cart?x=1')).toEqual({ '2.0': 40 });
    expect(await editionsOf(port, 20, '/beta')).toEqual({ '2.0': 20 });
    expect(await editionsOf(port, 20, '/betamax')).toEqual({ '1.0': 20 });
  });

  it('routes by source network, IPv4 and IPv6 rules side by side', async () => {
    await apply(full({ routes: [route({ kind: 'source', edition: '2.0', value: '::1/128' }), route({ kind: 'source', edition: '2.0', value: '127.0.0.0/8' })] }));
    expect(await editionsOf(port, 40)).toEqual({ '2.0': 40 });
    await apply(full({ routes: [route({ kind: 'source', edition: '2.0', value: '10.0.0.0/8' })] }));
    expect(await editionsOf(port, 40)).toEqual({ '1.0': 40 });
  });

  it('refuses a malformed rules token on the admin socket and keeps the rules it had', async () => {
    await apply(full({ routes: [route({ kind: 'cookie', edition: '2.0', name: 'beta', value: 'yes' })] }));
    expect(await api.one('fleetwave rules set shop cookie,2.0')).toMatch(/^error: rule 'cookie,2.0' does not have 4 fields$/);
    expect(await api.one('fleetwave rules set shop source,2.0,,nonsense')).toMatch(/^error: 'nonsense' is not an address or network$/);
    expect(await api.one('fleetwave rules show shop')).toBe('cookie,2.0,beta,yes');
    expect(await editionsOf(port, 10, '/', { cookie: 'beta=yes' })).toEqual({ '2.0': 10 });
  });

  it('gives a percent rule its share of new clients within 2 points over 2,000, and keeps each client on its edition', async () => {
    await apply(full({ routes: [route({ kind: 'percent', edition: '2.0', percent: 20 })] }));
    const cookies = new Map<string, string>();
    let newEdition = 0;
    const n = 2_000;
    for (let i = 0; i < n; i++) {
      const r = await get(port);
      expect(r.setCookie).toMatch(/^fw_shop=\d+; Path=\/; Max-Age=\d+; SameSite=Lax$/);
      if (r.edition === '2.0') newEdition++;
      if (i < 200) cookies.set(r.setCookie.split(';')[0]!, r.edition);
    }
    expect(Math.abs((newEdition / n) * 100 - 20)).toBeLessThanOrEqual(2);
    // Stickiness: every client that came back with its cookie gets the edition it got first, and no new cookie.
    for (const [cookie, edition] of cookies) {
      for (let k = 0; k < 3; k++) {
        const again = await get(port, '/', { cookie });
        expect(again.edition).toBe(edition);
        expect(again.setCookie).toBe('');
      }
    }
  });

  it('switches the default edition atomically: one map change, after the new slot is ready', async () => {
    // First half of an atomic release: b1 and b2 run 2.0 but are held out of rotation.
    await apply(full({}, [instance('a1'), instance('a2'), instance('b1', { state: 'drain', held: true }), instance('b2', { state: 'drain', held: true })]));
    expect(await editionsOf(port, 40)).toEqual({ '1.0': 40 });
    api.sent = [];
    await apply(full({ defaultEditions: ['2.0'] }));
    const mapChanges = api.sent.filter((c) => c.includes(' map '));
    expect(mapChanges).toEqual([expect.stringMatching(/^set map \S+fw_shop\.map __default fw_shop_e\d$/)]);
    const switchAt = api.sent.indexOf(mapChanges[0]!);
    const slot = mapChanges[0]!.slice(-1);
    // Both new-edition servers were made ready in the new slot before the switch.
    for (const s of ['b1', 'b2']) expect(api.sent.indexOf(`set server fw_shop_e${slot}/${s} state ready`)).toBeLessThan(switchAt);
    expect(await editionsOf(port, 40)).toEqual({ '2.0': 40 });
  });

  it('drains a server: haproxy sends it no new request (its stot stops growing) while the others serve', async () => {
    await apply(full());
    const slot = parseMapEntries(await api.one(`show map ${join(dir, 'fw_shop.map')}`)).get('1.0')!;
    await apply(full({}, [instance('a1', { state: 'drain' }), instance('a2'), instance('b1'), instance('b2')]));
    const drained = await sessionsOf(api, slot, 'a1');
    const other = await sessionsOf(api, slot, 'a2');
    expect(await editionsOf(port, 60)).toEqual({ '1.0': 60 });
    expect(await sessionsOf(api, slot, 'a1')).toBe(drained);
    expect(await sessionsOf(api, slot, 'a2')).toBe(other + 60);
  });

  it('keeps the last server of a backend in rotation when it drains (its gate holds requests, haproxy would answer 503)', async () => {
    await apply(full({}, [instance('a1', { state: 'drain' }), instance('a2', { state: 'drain' }), instance('b1'), instance('b2')]));
    expect(await editionsOf(port, 20)).toEqual({ '1.0': 20 });
  });

  it('takes a removed instance out and deletes its servers once idle', async () => {
    await apply(full());
    await apply({ ...update(0), instances: [instance('b2', { removed: true })] });
    await waitFor('b2 deleted from every backend', async () => {
      reconciler.kick();
      await reconciler.idle();
      return (await serverStates(api, 'shop')).every((r) => r.server !== 'b2');
    });
    await apply({ ...update(0), instances: [instance('b2')] });
    expect((await serverStates(api, 'shop')).filter((r) => r.server === 'b2')).toHaveLength(6);
  });

  it('attaches to the running haproxy after a restart (same pid) and repairs what changed behind its back', async () => {
    await apply(full());
    const slot = parseMapEntries(await api.one(`show map ${join(dir, 'fw_shop.map')}`)).get('1.0')!;
    // Behind the router's back: a1 and a2 forced into maint, the default pointed at 2.0's slot.
    const mapFile = join(dir, 'fw_shop.map');
    const other = slot === 'fw_shop_e0' ? 'fw_shop_e1' : 'fw_shop_e0';
    await api.run([`set server ${slot}/a1 state maint`, `set server ${slot}/a2 state maint`, `set map ${mapFile} __default ${other}`]);

    // A new router process: fresh cache and reconciler, the same socket.
    const again = await ensureHaproxy({ apps: [{ app: 'shop', host: '127.0.0.1', port }], slots: 4, runDir: dir, socketPath: haproxy.socket, haproxyBin: HAPROXY_BIN, threads: 2 }, new RuntimeApi(haproxy.socket), silentLogger);
    expect(again).toEqual({ pid: haproxy.pid, started: false });
    const fresh = new RecordingApi(haproxy.socket);
    const cache2 = new RoutingCache(['shop']);
    const reconciler2 = new Reconciler({ api: fresh, cache: cache2, apps: ['shop'], slots: 4, logger: silentLogger, resyncMs: 0 });
    cache2.applyUpdate({ ...full(), version: 1 });
    expect((await reconciler2.sync()).failures).toBe(0);
    expect(fresh.sent.sort()).toEqual([`set map ${mapFile} __default ${slot}`, `set server ${slot}/a1 state ready`, `set server ${slot}/a2 state ready`].sort());
    expect(await editionsOf(port, 20)).toEqual({ '1.0': 20 });
  });
});
