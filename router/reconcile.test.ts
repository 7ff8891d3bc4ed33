// The diff: fewest commands, and an order that never leaves traffic without a server.
import { describe, expect, it } from 'vitest';
import { computeDesired } from './desired.js';
import { appBackends } from './names.js';
import { planApp, sameAddress, slotsNow, type ActualApp, type ActualServer } from './reconcile.js';
import { formatCommand } from './runtime-commands.js';
import type { AdminState } from './runtime.js';
import { route, server, view } from './test-fixtures.js';

const MAP = '/run/fw_shop.map';
const BACKENDS = appBackends('shop', 2);

/** haproxy holding exactly what `desired` says (as a previous pass would have left it). */
function actualFrom(states: Record<string, Record<string, AdminState>>, map: Record<string, string> = {}, rules = '-'): ActualApp {
  const servers = new Map<string, Map<string, ActualServer>>();
  for (const be of BACKENDS) servers.set(be, new Map());
  for (const [be, s] of Object.entries(states)) {
    for (const [name, admin] of Object.entries(s)) servers.get(be)!.set(name, { address: '10.0.0.1', port: 8080, admin });
  }
  return { servers, map: new Map(Object.entries(map)), mapFile: MAP, rules };
}

function plan(v: ReturnType<typeof view>, actual: ActualApp): string[] {
  const desired = computeDesired(v, 2, slotsNow('shop', 2, actual));
  return planApp(desired, actual, BACKENDS).map(formatCommand);
}

const STEADY = {
  fw_shop_e0: { a1: 'ready', a2: 'ready' },
  fw_shop_e1: { a1: 'maint', a2: 'maint' },
  fw_shop_mix: { a1: 'ready', a2: 'ready' },
  fw_shop_any: { a1: 'ready', a2: 'ready' },
} as const;
const STEADY_MAP = { '1.0': 'fw_shop_e0', __default: 'fw_shop_e0' };

describe('planApp', () => {
  it('sends nothing when haproxy already holds the desired state', () => {
    expect(plan(view([server('a1', '1.0'), server('a2', '1.0')]), actualFrom(STEADY, STEADY_MAP))).toEqual([]);
  });

  it('builds an empty haproxy up: servers added (in maint) with checks, readied, then the map', () => {
    const cmds = plan(view([server('a1', '1.0')]), actualFrom({}));
    expect(cmds).toEqual([
      'add server fw_shop_e0/a1 10.0.0.1:8080 check inter 2s fall 2 rise 2 pool-max-conn -1 pool-purge-delay 5s',
      'enable health fw_shop_e0/a1',
      'add server fw_shop_e1/a1 10.0.0.1:8080 check inter 2s fall 2 rise 2 pool-max-conn -1 pool-purge-delay 5s',
      'enable health fw_shop_e1/a1',
      'add server fw_shop_mix/a1 10.0.0.1:8080 check inter 2s fall 2 rise 2 pool-max-conn -1 pool-purge-delay 5s',
      'enable health fw_shop_mix/a1',
      'add server fw_shop_any/a1 10.0.0.1:8080 check inter 2s fall 2 rise 2 pool-max-conn -1 pool-purge-delay 5s',
      'enable health fw_shop_any/a1',
      'set server fw_shop_e0/a1 state ready',
      'set server fw_shop_mix/a1 state ready',
      'set server fw_shop_any/a1 state ready',
      `add map ${MAP} 1.0 fw_shop_e0`,
      `add map ${MAP} __default fw_shop_e0`,
    ]);
  });

  it('drains a quiescing instance in every backend it serves, and only that', () => {
    const cmds = plan(view([server('a1', '1.0', { state: 'drain' }), server('a2', '1.0')]), actualFrom(STEADY, STEADY_MAP));
    expect(cmds).toEqual(['set server fw_shop_e0/a1 state drain', 'set server fw_shop_mix/a1 state drain', 'set server fw_shop_any/a1 state drain']);
  });

  it('switches atomically: the new slot ready first, then the one __default change, then the old side', () => {
    const actual = actualFrom(
      {
        fw_shop_e0: { a1: 'ready', b1: 'maint' },
        fw_shop_e1: { a1: 'maint', b1: 'drain' },
        fw_shop_mix: { a1: 'ready', b1: 'maint' },
        fw_shop_any: { a1: 'ready', b1: 'drain' },
      },
      { '1.0': 'fw_shop_e0', '2.0': 'fw_shop_e1', __default: 'fw_shop_e0' },
    );
    const cmds = plan(view([server('a1', '1.0'), server('b1', '2.0')], { defaultEditions: ['2.0'] }), actual);
    expect(cmds).toEqual([
      'set server fw_shop_e1/b1 state ready',
      'set server fw_shop_mix/b1 state ready',
      'set server fw_shop_any/b1 state ready',
      `set map ${MAP} __default fw_shop_e1`,
      'set server fw_shop_mix/a1 state maint',
    ]);
    expect(cmds.filter((c) => c.includes('map'))).toHaveLength(1);
  });

  it('takes an instance that left the app out: maint first, then deleted', () => {
    const cmds = plan(view([server('a2', '1.0')]), actualFrom(STEADY, STEADY_MAP));
    expect(cmds).toEqual([
      'set server fw_shop_e0/a1 state maint',
      'set server fw_shop_mix/a1 state maint',
      'set server fw_shop_any/a1 state maint',
      'del server fw_shop_e0/a1',
      'del server fw_shop_e1/a1',
      'del server fw_shop_mix/a1',
      'del server fw_shop_any/a1',
    ]);
  });

  it('moves a changed address, sets rules, and drops map entries of editions gone', () => {
    const actual = actualFrom(STEADY, { ...STEADY_MAP, '0.9': 'fw_shop_e1' });
    const v = view([server('a1', '1.0', { address: '10.0.0.2' }), server('a2', '1.0')], { routes: [route({ kind: 'cookie', edition: '1.0', name: 'c', value: 'v' })] });
    expect(plan(v, actual)).toEqual([
      'set server fw_shop_e0/a1 addr 10.0.0.2 port 8080',
      'set server fw_shop_e1/a1 addr 10.0.0.2 port 8080',
      'set server fw_shop_mix/a1 addr 10.0.0.2 port 8080',
      'set server fw_shop_any/a1 addr 10.0.0.2 port 8080',
      `del map ${MAP} 0.9`,
      // The flag that makes the frontend run the Lua action at all.
      `add map ${MAP} __rules 1`,
      'fleetwave rules set shop cookie,1.0,c,v',
    ]);
  });

  it('repairs a state changed behind its back', () => {
    const actual = actualFrom({ ...STEADY, fw_shop_e0: { a1: 'maint', a2: 'ready' } }, { ...STEADY_MAP, __default: 'fw_shop_e1' });
    expect(plan(view([server('a1', '1.0'), server('a2', '1.0')]), actual)).toEqual(['set server fw_shop_e0/a1 state ready', `set map ${MAP} __default fw_shop_e0`]);
  });
});

describe('slotsNow', () => {
  it('reads slot assignments from the map and calls a slot clean when all its servers are in maint', () => {
    const actual = actualFrom({ fw_shop_e0: { a1: 'ready' }, fw_shop_e1: { a1: 'maint' } }, { '1.0': 'fw_shop_e0', __default: 'fw_shop_e0', odd: 'fw_shop_e7' });
    const now = slotsNow('shop', 2, actual);
    expect(Object.fromEntries(now.assigned)).toEqual({ '1.0': 0 });
    expect([...now.clean]).toEqual([1]);
  });
});

describe('sameAddress', () => {
  it('compares IPv6 addresses in one spelling', () => {
    expect(sameAddress('fd00:0:0::1', 'fd00::1')).toBe(true);
    expect(sameAddress('10.0.0.1', '10.0.0.2')).toBe(false);
  });
});
