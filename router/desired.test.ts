// What haproxy should hold for an app: server states per backend, the map (edition slots, __default), slot moves.
import { describe, expect, it } from 'vitest';
import { assignSlots, computeDesired, wantedEditions, type DesiredApp } from './desired.js';
import { route, server, view } from './test-fixtures.js';

const FRESH = { assigned: new Map<string, number>(), clean: new Set([0, 1, 2, 3]) };

/** backend → "server=state" list, for compact expectations. */
function statesOf(d: DesiredApp): Record<string, string> {
  return Object.fromEntries([...d.states].map(([be, s]) => [be, [...s].map(([srv, st]) => `${srv}=${st}`).join(' ')]));
}

describe('computeDesired', () => {
  it('puts each instance in its edition slot, default-edition instances in mix, every one in any', () => {
    const d = computeDesired(view([server('a1', '1.0'), server('a2', '1.0', { state: 'drain' }), server('b1', '2.0')]), 2, FRESH);
    expect(statesOf(d)).toEqual({
      fw_shop_e0: 'a1=ready a2=drain b1=maint',
      fw_shop_e1: 'a1=maint a2=maint b1=ready',
      fw_shop_mix: 'a1=ready a2=drain b1=maint',
      fw_shop_any: 'a1=ready a2=drain b1=ready',
    });
    expect(Object.fromEntries(d.map)).toEqual({ '1.0': 'fw_shop_e0', '2.0': 'fw_shop_e1', __default: 'fw_shop_e0' });
    expect([...d.servers.keys()]).toEqual(['a1', 'a2', 'b1']);
  });

  it('sends default traffic to mix while two editions share it', () => {
    const d = computeDesired(view([server('a1', '1.0'), server('b1', '2.0')], { defaultEditions: ['1.0', '2.0'] }), 4, FRESH);
    expect(d.map.get('__default')).toBe('fw_shop_mix');
    expect(statesOf(d).fw_shop_mix).toBe('a1=ready b1=ready');
  });

  it('switches __default to the new edition slot and nothing else when the default moves (atomic)', () => {
    const instances = [server('a1', '1.0'), server('b1', '2.0')];
    const before = computeDesired(view(instances, { defaultEditions: ['1.0'] }), 4, FRESH);
    const now = { assigned: new Map([['1.0', 0], ['2.0', 1]]), clean: new Set([2, 3]) };
    const after = computeDesired(view(instances, { defaultEditions: ['2.0'] }), 4, now);
    expect(after.map.get('__default')).toBe('fw_shop_e1');
    expect(after.map.get('1.0')).toBe(before.map.get('1.0'));
    expect(statesOf(after).fw_shop_e1).toBe(statesOf(before).fw_shop_e1);
  });

  it('keeps the last server of a backend ready while it drains (its gate holds), but never a held one', () => {
    const d = computeDesired(view([server('a1', '1.0', { state: 'drain' }), server('b1', '2.0', { state: 'drain', held: true })]), 2, FRESH);
    expect(statesOf(d).fw_shop_e0).toBe('a1=ready b1=maint');
    expect(statesOf(d).fw_shop_e1).toBe('a1=maint b1=drain');
    expect(statesOf(d).fw_shop_any).toBe('a1=ready b1=drain');
  });

  it('drains an instance when another one in its backend stays ready', () => {
    const d = computeDesired(view([server('a1', '1.0', { state: 'drain' }), server('a2', '1.0')]), 2, FRESH);
    expect(statesOf(d).fw_shop_e0).toBe('a1=drain a2=ready');
  });

  it('leaves instances that run no edition in maint everywhere and the map without __default when nothing is default', () => {
    const d = computeDesired(view([server('x', '')], { defaultEditions: [] }), 1, FRESH);
    expect(statesOf(d)).toEqual({ fw_shop_e0: 'x=maint', fw_shop_mix: 'x=maint', fw_shop_any: 'x=maint' });
    expect(d.map.size).toBe(0);
  });

  it('compiles the rules into the Lua token, and flags the app as having rules', () => {
    const d = computeDesired(view([server('a1', '1.0')], { routes: [route({ kind: 'header', edition: '2.0', name: 'X-V', value: '1' })] }), 2, FRESH);
    expect(d.rules).toBe('header,2.0,x-v,1');
    expect(d.map.get('__rules')).toBe('1');
    expect(computeDesired(view([server('a1', '1.0')]), 2, FRESH).map.has('__rules')).toBe(false);
  });
});

describe('wantedEditions', () => {
  it('ranks default editions, then editions rules name (if running), then the rest by ready instances', () => {
    const v = view(
      [server('a', '1.0'), server('b', '2.0'), server('c', '3.0'), server('d', '3.0'), server('e', '4.0', { state: 'maint' })],
      { defaultEditions: ['1.0'], routes: [route({ kind: 'cookie', edition: '2.0', name: 'c', value: 'v' }), route({ kind: 'cookie', edition: '9.9', name: 'c', value: 'w' })] },
    );
    expect(wantedEditions(v)).toEqual(['1.0', '2.0', '3.0', '4.0']);
  });
});

describe('assignSlots', () => {
  it('keeps the slots the map gives and puts newcomers in the lowest clean free slot', () => {
    const got = assignSlots({ assigned: new Map([['2.0', 1]]), clean: new Set([0, 2, 3]) }, ['1.0', '2.0', '3.0'], 4);
    expect(Object.fromEntries(got.assigned)).toEqual({ '1.0': 0, '2.0': 1, '3.0': 2 });
    expect(got.again).toBe(false);
  });

  it('frees the slot of an edition that left; a newcomer takes it once it is clean (next pass)', () => {
    const now = { assigned: new Map([['1.0', 0], ['old', 1]]), clean: new Set<number>() };
    const first = assignSlots(now, ['1.0', 'new'], 2);
    expect(Object.fromEntries(first.assigned)).toEqual({ '1.0': 0 });
    expect(first).toMatchObject({ unslotted: ['new'], again: true });
    const second = assignSlots({ assigned: new Map([['1.0', 0]]), clean: new Set([1]) }, ['1.0', 'new'], 2);
    expect(Object.fromEntries(second.assigned)).toEqual({ '1.0': 0, new: 1 });
  });

  it('evicts the least wanted edition when every slot is taken by editions ranked lower', () => {
    const now = { assigned: new Map([['x', 0], ['y', 1]]), clean: new Set<number>() };
    const got = assignSlots(now, ['new-default', 'x', 'y'], 2);
    expect(Object.fromEntries(got.assigned)).toEqual({ x: 0 });
    expect(got).toMatchObject({ unslotted: ['new-default', 'y'], again: true });
  });

  it('gives up quietly when every slot holds a more wanted edition', () => {
    const got = assignSlots({ assigned: new Map([['a', 0]]), clean: new Set<number>() }, ['a', 'b'], 1);
    expect(got).toMatchObject({ unslotted: ['b'], again: false });
  });

  it('leaves a slot two editions claim to the more wanted one', () => {
    const got = assignSlots({ assigned: new Map([['b', 0], ['a', 0]]), clean: new Set([1]) }, ['a', 'b'], 2);
    expect(Object.fromEntries(got.assigned)).toEqual({ a: 0, b: 1 });
  });
});
