// What HAProxy should hold for one app, from what the controller says (and the instance events since): a pure
// function, so every routing decision is tested without haproxy.
//
//   backend         an instance's state there
//   fw_<app>_e<k>   its own state when it runs the edition that has slot k, else maint
//   fw_<app>_mix    its own state when it runs one of the app's default editions, else maint
//   fw_<app>_any    its own state (any edition; the last resort when the chosen backend has no usable server)
//
// and the map: `<edition> → fw_<app>_e<k>` for every edition with a slot, `__default →` the default edition's slot
// (one default edition) or fw_<app>_mix (two: a rolling release moving the default), `__rules → 1` while the app has
// rules (the frontend runs the Lua action only then). A backend never loses its last
// ready server to a drain: the instance's gate holds what arrives while its app restarts, where haproxy would answer
// 503 at once. A held instance (atomic release, first half) is the exception: it takes no traffic until the switch.
import type { Route } from '../proto/gen/fleetwave/v1/admin.js';
import { anyBackend, DEFAULT_KEY, mixBackend, RULES_KEY, slotBackend } from './names.js';
import { encodeRules, NO_RULES } from './rules.js';
import type { AdminState } from './runtime.js';

/** An instance as the router routes it (removed instances are not in the view). */
export interface RoutedServer {
  /** The agent id: the server's name in every backend. */
  instance: string;
  address: string;
  port: number;
  /** '' when it runs none. */
  edition: string;
  state: AdminState;
  held: boolean;
}

/** One app as the cache (controller stream and events) has it. */
export interface AppView {
  app: string;
  defaultEditions: readonly string[];
  routes: readonly Route[];
  instances: readonly RoutedServer[];
}

/** The slot each edition holds now, read back from haproxy's map, and the slots no server takes traffic in. */
export interface SlotsNow {
  assigned: ReadonlyMap<string, number>;
  /** Slots whose servers are all in maint: an edition may move in this pass. */
  clean: ReadonlySet<number>;
}

export interface DesiredApp {
  app: string;
  /** Every server, with its address: each is in every backend of the app. */
  servers: Map<string, { address: string; port: number }>;
  /** backend → server → state. */
  states: Map<string, Map<string, AdminState>>;
  map: Map<string, string>;
  /** The Lua rules token (router/rules.ts). */
  rules: string;
  /** Editions that want a slot and have none yet (all K taken, or one is being emptied for them). */
  unslotted: string[];
  /** Another pass right after this one can place an edition (a slot is being emptied now). */
  again: boolean;
  skippedRules: Array<{ id: string; why: string }>;
}

export function computeDesired(view: AppView, slots: number, now: SlotsNow): DesiredApp {
  const { app } = view;
  const placed = assignSlots(now, wantedEditions(view), slots);
  const servers = new Map(view.instances.map((i) => [i.instance, { address: i.address, port: i.port }]));
  const states = new Map<string, Map<string, AdminState>>();
  const put = (backend: string, server: string, state: AdminState) => {
    let inBackend = states.get(backend);
    if (!inBackend) states.set(backend, (inBackend = new Map()));
    inBackend.set(server, state);
  };
  for (const i of view.instances) {
    const slot = i.edition ? placed.assigned.get(i.edition) : undefined;
    for (let k = 0; k < slots; k++) put(slotBackend(app, k), i.instance, slot === k ? i.state : 'maint');
    put(mixBackend(app), i.instance, view.defaultEditions.includes(i.edition) ? i.state : 'maint');
    put(anyBackend(app), i.instance, i.edition ? i.state : 'maint');
  }
  const held = new Set(view.instances.filter((i) => i.held).map((i) => i.instance));
  for (const inBackend of states.values()) keepLastServer(inBackend, held);

  const map = new Map<string, string>();
  for (const [edition, slot] of placed.assigned) map.set(edition, slotBackend(app, slot));
  const target = defaultTarget(app, view.defaultEditions, placed.assigned);
  if (target) map.set(DEFAULT_KEY, target);
  const { token, skipped } = encodeRules(view.routes);
  if (token !== NO_RULES) map.set(RULES_KEY, '1');
  return { app, servers, states, map, rules: token, unslotted: placed.unslotted, again: placed.again, skippedRules: skipped };
}

/** Editions that want a slot, most wanted first: default editions, then editions rules name, then the rest by ready instances. */
export function wantedEditions(view: AppView): string[] {
  const running = new Map<string, number>();
  for (const i of view.instances) {
    if (i.edition) running.set(i.edition, (running.get(i.edition) ?? 0) + (i.state === 'ready' ? 1 : 0));
  }
  const wanted: string[] = [...view.defaultEditions];
  // A rule naming an edition nobody runs gets no slot: its requests go the default way.
  for (const r of view.routes) if (running.has(r.edition)) wanted.push(r.edition);
  const rest = [...running.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([e]) => e);
  return [...new Set([...wanted, ...rest])];
}

/**
 * Editions keep the slot the map gives them. A newcomer takes the lowest clean free slot; when every slot is taken,
 * it evicts the least wanted edition ranked below it, whose slot is emptied in this pass and given in the next.
 */
export function assignSlots(now: SlotsNow, wanted: readonly string[], slots: number): { assigned: Map<string, number>; unslotted: string[]; again: boolean } {
  const rank = (e: string) => wanted.indexOf(e);
  const assigned = new Map<string, number>();
  // Most wanted first, so two editions claiming one slot (a map edited by hand) leave it to the more wanted one.
  const current = [...now.assigned.entries()].filter(([e, s]) => rank(e) >= 0 && s < slots).sort((a, b) => rank(a[0]) - rank(b[0]));
  const used = new Set<number>();
  for (const [edition, slot] of current) {
    if (used.has(slot)) continue;
    assigned.set(edition, slot);
    used.add(slot);
  }
  const unslotted: string[] = [];
  const evicted = new Set<string>();
  let again = false;
  for (const edition of wanted) {
    if (assigned.has(edition) || evicted.has(edition)) continue;
    const free = Array.from({ length: slots }, (_, k) => k).filter((k) => !used.has(k));
    const clean = free.find((k) => now.clean.has(k));
    if (clean !== undefined) {
      assigned.set(edition, clean);
      used.add(clean);
      continue;
    }
    unslotted.push(edition);
    if (free.length > 0) {
      // A free slot still has servers taking traffic (its edition just left): emptied now, given next pass.
      again = true;
      continue;
    }
    const victim = [...assigned.keys()].filter((e) => rank(e) > rank(edition)).sort((a, b) => rank(b) - rank(a))[0];
    if (victim !== undefined) {
      // Its slot stays in `used`: nobody moves into a slot the same pass empties.
      assigned.delete(victim);
      evicted.add(victim);
      unslotted.push(victim);
      again = true;
    }
  }
  return { assigned, unslotted, again };
}

function defaultTarget(app: string, defaults: readonly string[], assigned: ReadonlyMap<string, number>): string | undefined {
  if (defaults.length === 0) return undefined;
  const slot = defaults.length === 1 ? assigned.get(defaults[0]!) : undefined;
  return slot === undefined ? mixBackend(app) : slotBackend(app, slot);
}

/** A backend where no server would be ready keeps its draining (not held) servers ready: their gates hold requests. */
function keepLastServer(states: Map<string, AdminState>, held: ReadonlySet<string>): void {
  for (const state of states.values()) if (state === 'ready') return;
  for (const [server, state] of states) if (state === 'drain' && !held.has(server)) states.set(server, 'ready');
}
