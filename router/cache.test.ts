// The routing cache: the watch's full and delta updates, and instance events overlaying them until the watch speaks.
import { describe, expect, it } from 'vitest';
import { RoutingCache } from './cache.js';
import { appRouting, routed, update } from './test-fixtures.js';

function stateOf(cache: RoutingCache, instance: string): string | undefined {
  const i = cache.view('shop')?.instances.find((x) => x.instance === instance);
  return i && `${i.edition}:${i.state}`;
}

describe('RoutingCache', () => {
  it('knows nothing of an app until the watch describes it, and ignores apps it does not front', () => {
    const cache = new RoutingCache(['shop']);
    expect(cache.view('shop')).toBeUndefined();
    expect(cache.applyUpdate(update(1, { instances: [routed('a1', '1.0')] }))).toEqual(new Set());
    expect(cache.applyUpdate(update(2, { full: true, apps: [appRouting([]), appRouting([], { app: 'other' })] }))).toEqual(new Set(['shop']));
    expect(cache.view('other')).toBeUndefined();
    expect(cache.version).toBe(2);
  });

  it('replaces an app wholesale, upserts and removes single instances', () => {
    const cache = new RoutingCache(['shop']);
    cache.applyUpdate(update(1, { full: true, apps: [appRouting([routed('a1', '1.0'), routed('a2', '1.0')])] }));
    cache.applyUpdate(update(2, { instances: [routed('a2', '1.0', { state: 'drain' }), routed('a3', '2.0'), routed('a1', '1.0', { removed: true })] }));
    expect(cache.view('shop')!.instances.map((i) => `${i.instance}=${i.state}`)).toEqual(['a2=drain', 'a3=ready']);
    cache.applyUpdate(update(3, { apps: [appRouting([routed('a3', '2.0')], { defaultEditions: ['2.0'] })] }));
    expect(cache.view('shop')).toMatchObject({ defaultEditions: ['2.0'], instances: [{ instance: 'a3' }] });
  });

  it('drains on quiesce.started and on a crash, readies on healthy with the event\'s edition', () => {
    const cache = new RoutingCache(['shop']);
    cache.applyUpdate(update(1, { full: true, apps: [appRouting([routed('a1', '1.0')])] }));
    expect(cache.applyEvent('shop', 'a1', 'stopped', { expected: false })).toBe(true);
    expect(stateOf(cache, 'a1')).toBe('1.0:drain');
    expect(cache.applyEvent('shop', 'a1', 'healthy', { edition: '1.0' })).toBe(true);
    expect(cache.applyEvent('shop', 'a1', 'quiesce.started', {})).toBe(true);
    expect(stateOf(cache, 'a1')).toBe('1.0:drain');
    expect(cache.applyEvent('shop', 'a1', 'stopped', { expected: false })).toBe(false);
    expect(cache.applyEvent('shop', 'a1', 'healthy', { edition: '2.0' })).toBe(true);
    expect(stateOf(cache, 'a1')).toBe('2.0:ready');
    expect(cache.applyEvent('shop', 'a1', 'drain.progress', {})).toBe(false);
    expect(cache.applyEvent('shop', 'nobody', 'healthy', {})).toBe(false);
  });

  it('keeps serving through a start-first restart: the replaced process\'s expected stop comes after the new one\'s healthy', () => {
    const cache = new RoutingCache(['shop']);
    cache.applyUpdate(update(1, { full: true, apps: [appRouting([routed('a1', '1.0')])] }));
    cache.applyEvent('shop', 'a1', 'healthy', { edition: '2.0' });
    expect(cache.applyEvent('shop', 'a1', 'stopped', { edition: '1.0', expected: true })).toBe(false);
    expect(stateOf(cache, 'a1')).toBe('2.0:ready');
  });

  it('keeps a held instance out on healthy, and a maint one in maint on quiesce', () => {
    const cache = new RoutingCache(['shop']);
    cache.applyUpdate(update(1, { full: true, apps: [appRouting([routed('h', '1.0', { state: 'drain', held: true }), routed('m', '1.0', { state: 'maint' })])] }));
    cache.applyEvent('shop', 'h', 'healthy', { edition: '2.0' });
    cache.applyEvent('shop', 'm', 'quiesce.started', {});
    expect(stateOf(cache, 'h')).toBe('2.0:drain');
    expect(stateOf(cache, 'm')).toBe('1.0:maint');
  });

  it('lets a later watch record win over an event, and keeps the event while the record does not change', () => {
    const cache = new RoutingCache(['shop']);
    cache.applyUpdate(update(1, { full: true, apps: [appRouting([routed('a1', '1.0')])] }));
    cache.applyEvent('shop', 'a1', 'quiesce.started', {});
    // A rule change re-sends the app with the same record for a1: the drain stays.
    cache.applyUpdate(update(2, { apps: [appRouting([routed('a1', '1.0')], { routes: [] })] }));
    expect(stateOf(cache, 'a1')).toBe('1.0:drain');
    cache.applyUpdate(update(3, { instances: [routed('a1', '2.0', { state: 'ready' })] }));
    expect(stateOf(cache, 'a1')).toBe('2.0:ready');
  });

  it('starts its version anew with a full update (a restarted controller counts again)', () => {
    const cache = new RoutingCache(['shop']);
    cache.applyUpdate(update(40, { full: true, apps: [appRouting([])] }));
    cache.applyUpdate(update(2, { full: true, apps: [appRouting([])] }));
    expect(cache.version).toBe(2);
  });
});
