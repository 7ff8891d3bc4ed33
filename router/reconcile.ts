// Desired (router/desired.ts) against what haproxy holds → the fewest Runtime API commands, in an order that never
// leaves traffic without a server:
//
//   1. add servers (they start in maint), fix changed addresses
//   2. drop map entries that go away
//   3. servers → ready                      the new targets can take traffic...
//   4. add/set map entries, __default last  ...before any request is sent to them: an atomic switch is this one
//                                           `set map … __default …`
//   5. rules                                (they name editions whose entries step 4 made)
//   6. servers → drain, then → maint        the old targets stop taking traffic only now
//   7. delete servers that left the app     (refused while connections remain: the next pass tries again)
import { isIPv6 } from 'node:net';
import type { DesiredApp } from './desired.js';
import { DEFAULT_KEY, RULES_KEY, slotOf } from './names.js';
import type { AdminState } from './runtime.js';
import type { RuntimeCommand } from './runtime-commands.js';

export interface ActualServer {
  address: string;
  port: number;
  admin: AdminState;
}

/** What haproxy holds for one app (router/haproxy-state.ts reads it). */
export interface ActualApp {
  /** backend → server → state, for the app's backends. */
  servers: Map<string, Map<string, ActualServer>>;
  map: Map<string, string>;
  /** The map's reference on the admin socket (its file path). */
  mapFile: string;
  /** The Lua rules token in force. */
  rules: string;
}

/** The slot each edition holds in haproxy's map, and the slots where no server takes traffic. */
export function slotsNow(app: string, slots: number, actual: ActualApp): { assigned: Map<string, number>; clean: Set<number> } {
  const assigned = new Map<string, number>();
  for (const [key, value] of actual.map) {
    const slot = slotOf(app, value);
    if (key !== DEFAULT_KEY && key !== RULES_KEY && slot !== undefined && slot < slots) assigned.set(key, slot);
  }
  const clean = new Set<number>();
  for (let k = 0; k < slots; k++) {
    const servers = actual.servers.get(`fw_${app}_e${k}`);
    if (!servers || [...servers.values()].every((s) => s.admin === 'maint')) clean.add(k);
  }
  return { assigned, clean };
}

export function planApp(desired: DesiredApp, actual: ActualApp, backends: readonly string[]): RuntimeCommand[] {
  const add: RuntimeCommand[] = [];
  const ready: RuntimeCommand[] = [];
  const drain: RuntimeCommand[] = [];
  const maint: RuntimeCommand[] = [];
  const remove: RuntimeCommand[] = [];
  for (const backend of backends) {
    const have = actual.servers.get(backend) ?? new Map<string, ActualServer>();
    const want = desired.states.get(backend) ?? new Map<string, AdminState>();
    for (const [server, where] of desired.servers) {
      const now = have.get(server);
      if (!now) {
        add.push({ op: 'add-server', backend, server, ...where }, { op: 'enable-health', backend, server });
      } else if (!sameAddress(now.address, where.address) || now.port !== where.port) {
        add.push({ op: 'set-addr', backend, server, ...where });
      }
      const state = want.get(server) ?? 'maint';
      if ((now?.admin ?? 'maint') === state) continue;
      const change: RuntimeCommand = { op: 'set-state', backend, server, state };
      (state === 'ready' ? ready : state === 'drain' ? drain : maint).push(change);
    }
    for (const [server, now] of have) {
      if (desired.servers.has(server)) continue;
      if (now.admin !== 'maint') maint.push({ op: 'set-state', backend, server, state: 'maint' });
      remove.push({ op: 'del-server', backend, server });
    }
  }
  const { drop, put } = planMap(desired.map, actual);
  const rules: RuntimeCommand[] = desired.rules === actual.rules ? [] : [{ op: 'set-rules', app: desired.app, token: desired.rules }];
  return [...add, ...drop, ...ready, ...put, ...rules, ...drain, ...maint, ...remove];
}

function planMap(want: ReadonlyMap<string, string>, actual: ActualApp): { drop: RuntimeCommand[]; put: RuntimeCommand[] } {
  const map = actual.mapFile;
  const drop: RuntimeCommand[] = [];
  const put: RuntimeCommand[] = [];
  for (const key of actual.map.keys()) if (!want.has(key)) drop.push({ op: 'del-map', map, key });
  // __default last: the entries rules lead to are in place before default traffic moves.
  const keys = [...want.keys()].sort((a, b) => Number(a === DEFAULT_KEY) - Number(b === DEFAULT_KEY));
  for (const key of keys) {
    const value = want.get(key)!;
    const now = actual.map.get(key);
    if (now === value) continue;
    put.push(now === undefined ? { op: 'add-map', map, key, value } : { op: 'set-map', map, key, value });
  }
  return { drop, put };
}

/** IPv6 addresses compare in one spelling (haproxy prints them as inet_ntop does). */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  return isIPv6(a) && isIPv6(b) && canonicalIpv6(a) === canonicalIpv6(b);
}

function canonicalIpv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname;
}
