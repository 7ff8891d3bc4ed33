// The routing hub: serves WatchRouting to the routers and records their acks, and is the engine's RouterGate.
//
//   router ──WatchRouting(apps, id)──▶ full update (every asked app, all its instances) at version V
//          ◀── deltas V+1, V+2 … ─────  an app whose head changed (rules, default editions, held instances): the app
//                                       again, whole; instances whose row changed: those instances
//          ──AckRouting(id, V')──▶     "applied everything up to V'"; sync(app) waits for this from every router
//
// Changes are noticed two ways: `kick(app)` (a rule changed, a release moved) marks the app's head to be read again,
// and a poll every 100 ms, while any router watches, reads the instances changed since the last poll (an index on
// instances(app, updated_unix_ms)). Versions start at the controller's start time in ms and grow by one per update,
// so they keep growing across controller restarts.
import type * as grpc from '@grpc/grpc-js';
import { BadInputError, NotFoundError, UnavailableError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AckRoutingRequest, AppRouting, RoutedInstance, RoutingUpdate, WatchRoutingRequest } from '../proto/gen/fleetwave/v1/admin.js';
import type { RouterGate } from './domain/ports.js';
import type { ControllerMetrics } from './metrics.js';
import { AppTable, type RoutingSource } from './routing-table.js';

export interface RoutingHubOptions {
  source: RoutingSource;
  /** The app of a release (the engine says which release changed). */
  appOfRelease: (releaseId: string) => string;
  hasApp: (app: string) => boolean;
  logger: Logger;
  metrics?: ControllerMetrics;
  pollIntervalMs?: number;
  /** How long sync() waits for the routers before it lets the release go on (and logs who lagged). */
  syncDeadlineMs?: number;
  now?: () => number;
}

type WatchCall = grpc.ServerWritableStream<WatchRoutingRequest, RoutingUpdate>;

/** One open WatchRouting stream. */
interface Watcher {
  routerId: string;
  apps: Set<string>;
  call: WatchCall;
  /** The highest version the router acked. */
  acked: number;
  /** Versions sent and not yet acked, oldest first, with when (for the ack lag); bounded. */
  unacked: Array<{ version: number; at: number }>;
}

/** A sync() waiting for the routers fronting `app` to ack `target`. */
interface PendingSync {
  app: string;
  target: number;
  finish: (lagging: Watcher[]) => void;
}

const ROUTER_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const MAX_UNACKED = 1024;
const ROUTER_DEADLINE_MS = 10_000;

export class RoutingHub implements RouterGate {
  private readonly watchers = new Set<Watcher>();
  private readonly tables = new Map<string, AppTable>();
  private readonly pending = new Set<PendingSync>();
  /** Release id → app, so a release's changes cost no lookup after the first. */
  private readonly releaseApps = new Map<string, string>();
  private readonly log: Logger;
  private readonly now: () => number;
  private version: number;
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private stopped = false;

  constructor(private readonly o: RoutingHubOptions) {
    this.log = o.logger;
    this.now = o.now ?? (() => Date.now());
    this.version = this.now();
  }

  // ── what the rest of the controller tells it ──────────────────────────────

  /** The app's rules, releases or definition changed: its head is read again and sent if it differs (soon, once per tick). */
  kick(app: string): void {
    const table = this.tables.get(app);
    if (!table) return;
    table.markHeadDirty();
    this.scheduleFlush();
  }

  /** A release changed (engine.onReleaseChanged): its app's default editions or held instances may have. */
  releaseChanged(releaseId: string): void {
    if (this.tables.size === 0) return;
    let app = this.releaseApps.get(releaseId);
    if (app === undefined) {
      try {
        app = this.o.appOfRelease(releaseId);
      } catch {
        return;
      }
      this.releaseApps.set(releaseId, app);
    }
    this.kick(app);
  }

  /** The store removed an instance (store.onInstanceRemoved). */
  instanceRemoved(app: string, instance: string): void {
    const table = this.tables.get(app);
    if (!table) return;
    table.noteRemoved(instance);
    this.scheduleFlush();
  }

  // ── RouterGate ─────────────────────────────────────────────────────────────

  routersFor(app: string): number {
    return new Set([...this.watchers].filter((w) => w.apps.has(app)).map((w) => w.routerId)).size;
  }

  sync(app: string, onApplied: () => void): void {
    const started = this.now();
    let done = false;
    let deadline: NodeJS.Timeout | undefined;
    const entry: PendingSync = {
      app,
      target: 0,
      finish: (lagging) => {
        if (done) return;
        done = true;
        if (deadline) clearTimeout(deadline);
        this.pending.delete(entry);
        const seconds = Math.max(0, this.now() - started) / 1000;
        this.o.metrics?.routerSync.observe({ outcome: lagging.length ? 'deadline' : 'applied' }, seconds);
        if (lagging.length) {
          const routers = lagging.map((w) => ({ router: w.routerId, acked: w.acked }));
          this.log.warn({ app, target: entry.target, routers }, 'routers did not apply the routing change in time; going on without them');
        }
        onApplied();
      },
    };
    const table = this.tables.get(app);
    if (!table) {
      // No router fronts the app: nothing to wait for (called back outside the caller's stack all the same).
      setImmediate(() => entry.finish([]));
      return;
    }
    table.markHeadDirty();
    this.flush();
    entry.target = table.lastVersion;
    this.pending.add(entry);
    deadline = setTimeout(() => entry.finish(this.lagging(entry)), this.o.syncDeadlineMs ?? ROUTER_DEADLINE_MS);
    deadline.unref?.();
    setImmediate(() => this.settle(entry));
  }

  // ── the gRPC side ──────────────────────────────────────────────────────────

  /**
   * WatchRouting: the full update now, then deltas until the router goes away or the controller stops. Throws
   * (BadInputError, NotFoundError, UnavailableError) before anything is sent when the request cannot be served.
   */
  watch(call: WatchCall): void {
    const watcher = this.open(call);
    const close = () => this.close(watcher);
    call.on('cancelled', close);
    call.on('error', close);
    call.on('close', close);
  }

  /** AckRouting: the router applied every update up to `version`. */
  ack(request: AckRoutingRequest): void {
    const routerId = request.routerId.trim();
    if (!ROUTER_ID.test(routerId)) throw new BadInputError(`ack: router id '${routerId}' must match [A-Za-z0-9][A-Za-z0-9._:@-]*`);
    if (request.version > this.version) throw new BadInputError(`ack: version ${request.version} was never sent (the newest is ${this.version})`);
    // A router whose stream is gone (it reconnects) acks into nothing: its new stream starts with a full update.
    for (const w of this.watchers) {
      if (w.routerId !== routerId || request.version <= w.acked) continue;
      w.acked = request.version;
      while (w.unacked.length && w.unacked[0]!.version <= w.acked) w.unacked.shift();
    }
    for (const entry of this.pending) this.settle(entry);
  }

  /** Ends every stream (the controller stops): routers keep their HAProxy as it is and reconnect. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w.call.end();
    }
    // Nothing reads the store after this (it closes next).
    this.tables.clear();
    for (const entry of [...this.pending]) entry.finish([]);
  }

  /** Open streams, and per router the seconds since its oldest unacked update (0: all acked), for the metrics. */
  stats(): { routers: number; lag: Array<{ router: string; seconds: number }> } {
    const now = this.now();
    const lag = new Map<string, number>();
    for (const w of this.watchers) {
      const oldest = w.unacked[0];
      lag.set(w.routerId, Math.max(lag.get(w.routerId) ?? 0, oldest ? (now - oldest.at) / 1000 : 0));
    }
    return { routers: this.watchers.size, lag: [...lag].map(([router, seconds]) => ({ router, seconds })) };
  }

  // ── internals ──────────────────────────────────────────────────────────────

  private open(call: WatchCall): Watcher {
    if (this.stopped) throw new UnavailableError('the controller is stopping');
    const routerId = call.request.routerId.trim();
    if (!ROUTER_ID.test(routerId)) throw new BadInputError(`watch: router id '${routerId}' must match [A-Za-z0-9][A-Za-z0-9._:@-]*`);
    const apps = [...new Set(call.request.apps.map((a) => a.trim()))];
    if (apps.length === 0) throw new BadInputError('watch: name at least one app the router fronts');
    for (const app of apps) if (!this.o.hasApp(app)) throw new NotFoundError(`app '${app}' does not exist`);
    // Deltas up to now go to the routers already watching; the new one starts from the same state, whole.
    this.flush();
    for (const app of apps) {
      if (this.tables.has(app)) continue;
      const table = new AppTable(app, this.o.source, this.now());
      table.lastVersion = this.version;
      this.tables.set(app, table);
    }
    const watcher: Watcher = { routerId, apps: new Set(apps), call, acked: 0, unacked: [] };
    this.watchers.add(watcher);
    this.send(watcher, { version: this.version, full: true, apps: apps.map((a) => this.tables.get(a)!.full()), instances: [] });
    this.log.info({ router: routerId, apps, version: this.version }, 'router watching');
    this.armPoll();
    return watcher;
  }

  private close(watcher: Watcher): void {
    if (!this.watchers.delete(watcher)) return;
    this.log.info({ router: watcher.routerId, acked: watcher.acked }, 'router stopped watching');
    // Tables no router needs any more are dropped; a router that comes back starts from a fresh read.
    for (const app of watcher.apps) if (![...this.watchers].some((w) => w.apps.has(app))) this.tables.delete(app);
    if (this.watchers.size === 0) {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      this.releaseApps.clear();
    }
    for (const entry of this.pending) this.settle(entry);
  }

  private armPoll(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.flush(), this.o.pollIntervalMs ?? 100);
    this.timer.unref?.();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Refreshes every watched app and sends what changed, as one version, to the routers that front it. */
  private flush(): void {
    if (this.stopped || this.tables.size === 0) return;
    const now = this.now();
    const apps = new Map<string, AppRouting>();
    const instances = new Map<string, RoutedInstance[]>();
    for (const table of this.tables.values()) {
      try {
        const change = table.refresh(now);
        if (change.app) apps.set(table.app, change.app);
        else if (change.instances.length) instances.set(table.app, change.instances);
      } catch (err) {
        this.log.error({ err, app: table.app }, 'routing refresh failed');
      }
    }
    if (apps.size === 0 && instances.size === 0) return;
    const version = ++this.version;
    for (const app of [...apps.keys(), ...instances.keys()]) this.tables.get(app)!.lastVersion = version;
    for (const w of this.watchers) {
      const mine = [...w.apps];
      const update: RoutingUpdate = {
        version,
        full: false,
        apps: mine.flatMap((a) => (apps.has(a) ? [apps.get(a)!] : [])),
        instances: mine.flatMap((a) => instances.get(a) ?? []),
      };
      if (update.apps.length || update.instances.length) this.send(w, update);
    }
  }

  private send(w: Watcher, update: RoutingUpdate): void {
    w.call.write(update);
    w.unacked.push({ version: update.version, at: this.now() });
    // A router that never acks must not grow this without end: the oldest entry (the lag) is what matters.
    if (w.unacked.length > MAX_UNACKED) w.unacked.splice(1, 1);
  }

  /** The routers fronting the sync's app that have not acked its version. */
  private lagging(entry: PendingSync): Watcher[] {
    return [...this.watchers].filter((w) => w.apps.has(entry.app) && w.acked < entry.target);
  }

  /** Calls the sync back once no router fronting its app lags (one that went away no longer counts). */
  private settle(entry: PendingSync): void {
    if (this.lagging(entry).length === 0) entry.finish([]);
  }
}
