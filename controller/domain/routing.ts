// What the routers are told, as pure functions: an app's default editions, which instances an atomic release holds
// out of rotation, each instance's server state, and whether a routing rule is well formed (docs/routing.md).
//
//  default editions, decided by the app's newest release that moves the default (takes_default):
//    To release ─────────────────────────────────────────▶ from
//    Releasing / Suspending / Suspended / Release failed ─▶ from ∪ {E}   (rolling, grouped: both serve)
//      atomic ──── route phase '' or 'first-half' ──────▶ from
//             └─── route phase 'switched' ──────────────▶ {E}         (the one runtime switch)
//    Released ────────────────────────────────────────────▶ {E}
//    Rolling back / Rollback failed ──────────────────────▶ from ∪ {E}
//    Rolled back ─────────────────────────────────────────▶ from
//    no such release ─────────────────────────────────────▶ every edition some instance runs
import { parseCidr } from '../../common/addresses.js';
import { BadInputError } from '../../common/errors.js';
import type { RoutePhase } from './records.js';

/** How a rule matches a request. */
export const ROUTE_KINDS = ['header', 'cookie', 'path-prefix', 'source', 'percent'] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];

export interface RouteRecord {
  id: string;
  app: string;
  edition: string;
  kind: RouteKind;
  /** header/cookie: its name; '' otherwise. */
  name: string;
  /** header/cookie: the exact value; path-prefix: the prefix; source: the canonical CIDR; percent: ''. */
  value: string;
  /** percent: 1..100; 0 otherwise. */
  percent: number;
  /** Ascending: lower runs first; ties in creation order. */
  priority: number;
  createdUnixMs: number;
  createdBy: string;
}

/** What a router does with an instance's server. */
export type ServerState =
  /** Takes new requests. */
  | 'ready'
  /** Finishes what it has, takes nothing new (quiesced, or held out by an atomic release). */
  | 'drain'
  /** Out: no process to send to. */
  | 'maint';

/** The release fields the default editions depend on. */
export interface DefaultRelease {
  edition: string;
  status: string;
  strategy: string;
  fromDefault: string[];
  routePhase: RoutePhase;
  /** An atomic release of one batch (a one-instance target) has no switch: it serves like a rolling one. */
  batchCount?: number;
}

/** The app's default editions now, from its newest release that moves the default (null: none) and the editions its instances run. */
export function defaultEditions(newest: DefaultRelease | null, running: Iterable<string>): string[] {
  if (!newest) return [...new Set([...running].filter((e) => e !== ''))].sort();
  const from = newest.fromDefault;
  const both = union(from, [newest.edition]);
  // Atomic with two halves: the old edition alone until the switch, whatever happens before it (a rollback then
  // only brings the held first half back); after it, as a rolling release would.
  const atomic = newest.strategy === 'atomic' && (newest.batchCount ?? 2) > 1;
  if (atomic && newest.routePhase !== 'switched' && newest.status !== 'Released') return [...from];
  switch (newest.status) {
    case 'To release':
    case 'Rolled back':
      return [...from];
    case 'Released':
      return [newest.edition];
    case 'Rolling back':
    case 'Rollback failed':
      return both;
    default:
      // Releasing, Suspending, Suspended, Release failed.
      if (atomic) return [newest.edition];
      return both;
  }
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}

/**
 * A new release moves the default when its target covers every instance now on the default editions (a release to
 * one group of several leaves the default where it is: the others still serve it). Vacuously true for an app that
 * runs no edition yet: its first release gives it its default.
 */
export function takesDefault(defaults: string[], instances: Array<{ agentId: string; activeEdition: string }>, target: ReadonlySet<string>): boolean {
  const onDefault = new Set(defaults);
  return instances.every((i) => !onDefault.has(i.activeEdition) || target.has(i.agentId));
}

/** Instances atomic releases hold out of rotation: batch 1 while the route phase is 'first-half' (until the switch). */
export function heldInstances(releases: Array<{ routePhase: RoutePhase; firstBatch: string[] }>): Set<string> {
  const held = new Set<string>();
  for (const r of releases) if (r.routePhase === 'first-half') for (const id of r.firstBatch) held.add(id);
  return held;
}

/** The instance fields its server state depends on. */
export interface RoutedRow {
  activeEdition: string;
  processState: string;
  quiesced: boolean;
}

/**
 * An instance's server state. Its agent's reachability is not an input: a controller that lost an agent (or just
 * restarted, when every agent counts as unreachable until it says hello) knows nothing new about its gate, so the
 * last report stands, and HAProxy's own health checks route around a gate that is really gone.
 */
export function serverState(row: RoutedRow, held: boolean): ServerState {
  // 'starting' counts as up: the gate holds what arrives until the process answers.
  if (row.activeEdition === '' || (row.processState !== 'running' && row.processState !== 'starting')) return 'maint';
  if (row.quiesced || held) return 'drain';
  return 'ready';
}

/** Groups where some instance runs `edition`, sorted. */
export function activeGroups(instances: Array<{ group: string; activeEdition: string }>, edition: string): string[] {
  return [...new Set(instances.filter((i) => i.activeEdition === edition).map((i) => i.group))].sort();
}

/**
 * Editions rules name that a release would leave active nowhere: active now, and run only by instances of its target
 * (which all move to the release's edition). An edition already active nowhere is not this release's doing.
 */
export function editionsLeftNowhere(
  named: Iterable<string>,
  instances: Array<{ agentId: string; activeEdition: string }>,
  target: ReadonlySet<string>,
  edition: string,
): string[] {
  const left: string[] = [];
  for (const name of new Set(named)) {
    if (name === edition) continue;
    const runs = instances.filter((i) => i.activeEdition === name);
    if (runs.length > 0 && runs.every((i) => target.has(i.agentId))) left.push(name);
  }
  return left.sort();
}

// ── rule validation ──────────────────────────────────────────────────────────

/** What an operator asks for; validateRoute turns it into the fields of a RouteRecord. */
export interface RouteInput {
  kind: string;
  name: string;
  value: string;
  percent: number;
  priority: number;
}

/** RFC 7230 token: what a header (or cookie) name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MAX_NAME = 128;
const MAX_VALUE = 256;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Characters a value may not hold. Rules reach HAProxy through its admin socket, one command per line with words
 * split on blanks and ';' ending a command: so no control character, blank, ';' or '\', and no '"' (quoting). Cookie
 * values follow RFC 6265's cookie-octet, which also excludes ','. Non-ASCII is refused: header values are ASCII.
 */
const VALUE_FORBIDDEN: Record<'header' | 'cookie' | 'path-prefix', RegExp> = {
  header: /[^\x21-\x7e]|[;\\"]/,
  cookie: /[^\x21-\x7e]|[;\\",]/,
  // A path prefix matches the path alone: '?' and '#' could never match.
  'path-prefix': /[^\x21-\x7e]|[;\\"?#]/,
};

/** Checks a rule and returns its canonical fields; throws BadInputError with one line naming what is wrong. */
export function validateRoute(input: RouteInput): Pick<RouteRecord, 'kind' | 'name' | 'value' | 'percent' | 'priority'> {
  const kind = input.kind.trim() as RouteKind;
  if (!ROUTE_KINDS.includes(kind)) throw new BadInputError(`route: kind '${input.kind}' is not one of ${ROUTE_KINDS.join(', ')}`);
  if (!Number.isInteger(input.priority) || input.priority < INT32_MIN || input.priority > INT32_MAX) {
    throw new BadInputError(`route: priority '${input.priority}' is not a whole number from ${INT32_MIN} to ${INT32_MAX}`);
  }
  const priority = input.priority;
  if (kind === 'percent') {
    if (input.name || input.value) throw new BadInputError('route: a percent rule has no name or value');
    if (!Number.isInteger(input.percent) || input.percent < 1 || input.percent > 100) {
      throw new BadInputError(`route: percent '${input.percent}' is not a whole number from 1 to 100`);
    }
    return { kind, name: '', value: '', percent: input.percent, priority };
  }
  if (input.percent) throw new BadInputError(`route: a ${kind} rule has no percent`);
  if (kind === 'source') {
    if (input.name) throw new BadInputError('route: a source rule has no name');
    return { kind, name: '', value: parseCidr(input.value, 'route: source').text, percent: 0, priority };
  }
  if (kind === 'path-prefix') {
    if (input.name) throw new BadInputError('route: a path-prefix rule has no name');
    return { kind, name: '', value: checkValue(input.value, kind), percent: 0, priority };
  }
  return { kind, name: checkName(input.name, kind), value: checkValue(input.value, kind), percent: 0, priority };
}

function checkName(name: string, kind: 'header' | 'cookie'): string {
  if (name === '') throw new BadInputError(`route: a ${kind} rule needs a ${kind} name (NAME=VALUE)`);
  if (name.length > MAX_NAME || !TOKEN.test(name)) {
    throw new BadInputError(`route: ${kind} name '${printable(name)}' is not a token (letters, digits and !#$%&'*+-.^_\`|~, at most ${MAX_NAME})`);
  }
  return name;
}

function checkValue(value: string, kind: 'header' | 'cookie' | 'path-prefix'): string {
  if (kind === 'path-prefix' && !value.startsWith('/')) throw new BadInputError(`route: path prefix '${printable(value)}' must start with '/'`);
  if (value === '') throw new BadInputError(`route: a ${kind} rule needs a value (NAME=VALUE)`);
  if (value.length > MAX_VALUE) throw new BadInputError(`route: ${kind} value is longer than ${MAX_VALUE} characters`);
  if (VALUE_FORBIDDEN[kind].test(value)) {
    const extra = kind === 'cookie' ? ", ','" : kind === 'path-prefix' ? ", '?', '#'" : '';
    throw new BadInputError(`route: ${kind} value '${printable(value)}' may hold only visible ASCII characters, without spaces, ';', '\\', '"'${extra}`);
  }
  return value;
}

/** A value as an error line may quote it: control characters escaped, so the message stays one line. */
function printable(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** The percent rules of an app take consecutive bucket ranges: together at most 100. */
export function percentTotal(routes: Array<Pick<RouteRecord, 'kind' | 'percent'>>): number {
  return routes.filter((r) => r.kind === 'percent').reduce((sum, r) => sum + r.percent, 0);
}

/** A rule's match in the operator's words: `header X-Beta=1`, `path-prefix /beta`, `percent 5%`. */
export function describeMatch(r: Pick<RouteRecord, 'kind' | 'name' | 'value' | 'percent'>): string {
  if (r.kind === 'percent') return `percent ${r.percent}%`;
  if (r.kind === 'header' || r.kind === 'cookie') return `${r.kind} ${r.name}=${r.value}`;
  return `${r.kind} ${r.value}`;
}

/** Two rules that match the same requests (header names compare without case); percent rules never clash. */
export function sameMatch(a: Pick<RouteRecord, 'kind' | 'name' | 'value'>, b: Pick<RouteRecord, 'kind' | 'name' | 'value'>): boolean {
  if (a.kind !== b.kind || a.kind === 'percent') return false;
  const name = (x: string) => (a.kind === 'header' ? x.toLowerCase() : x);
  return name(a.name) === name(b.name) && a.value === b.value;
}

/** Rules in evaluation order: ascending priority, then creation. */
export function inEvaluationOrder<T extends Pick<RouteRecord, 'priority' | 'createdUnixMs' | 'id'>>(routes: T[]): T[] {
  return [...routes].sort((a, b) => a.priority - b.priority || a.createdUnixMs - b.createdUnixMs || a.id.localeCompare(b.id));
}
