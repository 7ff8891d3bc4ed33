// One app's routing as the routers were last told it, and what changed since: the routing hub keeps one per watched
// app. Work per refresh is bounded by what changed: the rows changed since the last poll, and the app's head (rules,
// default editions, held instances) only when something said it may have changed.
import type { AppRouting, Route, RoutedInstance } from '../proto/gen/fleetwave/v1/admin.js';
import { defaultEditions, serverState, type RouteRecord } from './domain/routing.js';
import type { AppRoutingHead, RoutingInstanceRow } from './store/routing.js';

/** What the table reads: store.routing, or a fake in tests. */
export interface RoutingSource {
  head(app: string): AppRoutingHead;
  instances(app: string): RoutingInstanceRow[];
  instancesChangedSince(app: string, sinceUnixMs: number): RoutingInstanceRow[];
}

/** What one refresh found: the app again (its head changed: every instance with it), or the instances that changed. */
export interface TableChange {
  app: AppRouting | null;
  instances: RoutedInstance[];
}

/**
 * Rows are read again from this far before the last poll: a row stamped (controller clock) just before a poll may
 * commit after its read, and a clock stepped back a little must not hide rows. Re-read rows that did not change
 * cost a comparison and are not sent.
 */
export const POLL_LOOKBACK_MS = 250;

export function routeToProto(r: RouteRecord): Route {
  return { ...r };
}

export class AppTable {
  /** Rows as last read, by instance id. */
  private readonly rows = new Map<string, RoutingInstanceRow>();
  /** Instances as the routers were last told them. */
  private readonly sent = new Map<string, RoutedInstance>();
  /** Instances per running edition (the default when no release decides it). */
  private readonly editions = new Map<string, number>();
  private head: AppRoutingHead;
  private defaults: string[] = [];
  private signature = '';
  private headDirty = false;
  private readonly removed = new Set<string>();
  /** Rows changed at or after this (minus the lookback) are read at the next refresh. */
  private cursor: number;
  /** The version of the last update that carried this app (its full included). */
  lastVersion = 0;

  constructor(
    readonly app: string,
    private readonly source: RoutingSource,
    now: number,
  ) {
    this.cursor = now;
    this.head = source.head(app);
    for (const row of source.instances(app)) this.setRow(row);
    this.rebuild();
  }

  /** Rules, releases or the app changed: read the head again at the next refresh. */
  markHeadDirty(): void {
    this.headDirty = true;
  }

  /** The store removed the instance (its agent no longer reports the app). */
  noteRemoved(instance: string): void {
    this.removed.add(instance);
  }

  /** The app with every instance, as the routers have it now. */
  full(): AppRouting {
    return {
      app: this.app,
      defaultEditions: [...this.defaults],
      routes: this.head.routes.map(routeToProto),
      healthPath: this.head.healthPath,
      instances: [...this.sent.values()].sort((a, b) => a.instance.localeCompare(b.instance)),
    };
  }

  /** Reads what changed since the last refresh (at `now`, controller clock) and returns what the routers must hear. */
  refresh(now: number): TableChange {
    const changed = this.source.instancesChangedSince(this.app, this.cursor - POLL_LOOKBACK_MS);
    this.cursor = now;
    const touched = new Set<string>();
    const present = new Set(changed.map((r) => r.agentId));
    // A removed instance that is back (its agent reports the app again) is in the changed rows, and stays.
    for (const id of this.removed) if (!present.has(id) && this.deleteRow(id)) touched.add(id);
    this.removed.clear();
    for (const row of changed) if (this.setRow(row)) touched.add(row.agentId);
    const reread = this.headDirty;
    if (reread) this.head = this.source.head(this.app);
    this.headDirty = false;
    if ((reread || touched.size > 0) && this.rebuildHeadIfChanged()) return { app: this.full(), instances: [] };
    const instances: RoutedInstance[] = [];
    for (const id of touched) {
      const row = this.rows.get(id);
      const next = row ? this.routed(row) : removedInstance(this.app, id);
      if (sameInstance(this.sent.get(id), next)) continue;
      if (row) this.sent.set(id, next);
      else this.sent.delete(id);
      instances.push(next);
    }
    return { app: null, instances };
  }

  /** Recomputes the default editions and the head's signature; true (every instance recomputed) when it changed. */
  private rebuildHeadIfChanged(): boolean {
    const before = this.signature;
    this.computeHead();
    if (this.signature === before) return false;
    this.sent.clear();
    for (const row of this.rows.values()) this.sent.set(row.agentId, this.routed(row));
    return true;
  }

  private rebuild(): void {
    this.computeHead();
    for (const row of this.rows.values()) this.sent.set(row.agentId, this.routed(row));
  }

  private computeHead(): void {
    const release = this.head.defaultRelease;
    const running = release ? [] : [...this.editions.keys()];
    this.defaults = defaultEditions(release, running);
    this.signature = JSON.stringify([this.defaults, this.head.routes, this.head.healthPath, [...this.head.held].sort()]);
  }

  private routed(row: RoutingInstanceRow): RoutedInstance {
    const held = this.head.held.has(row.agentId);
    return {
      app: this.app,
      instance: row.agentId,
      group: row.group,
      address: row.address,
      port: row.servicePort,
      edition: row.activeEdition,
      state: serverState(row, held),
      held,
      removed: false,
    };
  }

  /** True when the row differs from the one held. */
  private setRow(row: RoutingInstanceRow): boolean {
    const old = this.rows.get(row.agentId);
    if (old && sameRow(old, row)) return false;
    if (old) this.countEdition(old.activeEdition, -1);
    this.countEdition(row.activeEdition, 1);
    this.rows.set(row.agentId, row);
    return true;
  }

  private deleteRow(id: string): boolean {
    const old = this.rows.get(id);
    if (!old) return false;
    this.countEdition(old.activeEdition, -1);
    this.rows.delete(id);
    return true;
  }

  private countEdition(edition: string, by: number): void {
    if (!edition) return;
    const count = (this.editions.get(edition) ?? 0) + by;
    if (count > 0) this.editions.set(edition, count);
    else this.editions.delete(edition);
  }
}

function removedInstance(app: string, instance: string): RoutedInstance {
  return { app, instance, group: '', address: '', port: 0, edition: '', state: 'maint', held: false, removed: true };
}

function sameRow(a: RoutingInstanceRow, b: RoutingInstanceRow): boolean {
  return (
    a.group === b.group &&
    a.servicePort === b.servicePort &&
    a.activeEdition === b.activeEdition &&
    a.processState === b.processState &&
    a.quiesced === b.quiesced &&
    a.address === b.address
  );
}

function sameInstance(a: RoutedInstance | undefined, b: RoutedInstance): boolean {
  return (
    a !== undefined &&
    a.removed === b.removed &&
    a.group === b.group &&
    a.address === b.address &&
    a.port === b.port &&
    a.edition === b.edition &&
    a.state === b.state &&
    a.held === b.held
  );
}
