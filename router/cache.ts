// The router's only state: a cache of what the controller's routing watch said, plus what instance events said
// since. An app the watch never described is not in the cache, and the router leaves its haproxy objects alone.
//
// Events overlay the watch's record of an instance until the watch says something new about that instance (its
// record changes): the later word wins either way, and a drain too many is harmless.
//   quiesce.started          → drain (unless the record says maint)
//   stopped, not expected    → drain (the app crashed; its gate holds while the agent restarts it)
//   healthy {edition}        → ready on that edition (unless the record says held)
// An expected `stopped` changes nothing: a stop-first restart was drained by its quiesce.started already, and in a
// start-first one it is the replaced process stopping after the new one's `healthy` (the instance serves on).
import type { AppRouting, RoutedInstance, RoutingUpdate } from '../proto/gen/fleetwave/v1/admin.js';
import { INSTANCE_EVENTS } from '../common/events.js';
import type { AppView, RoutedServer } from './desired.js';
import type { AdminState } from './runtime.js';

interface CachedApp {
  defaultEditions: string[];
  routes: AppRouting['routes'];
  instances: Map<string, RoutedInstance>;
}

interface Overlay {
  state: AdminState;
  edition?: string;
}

/** Instance events that move the router. */
export const ROUTED_EVENTS: readonly string[] = [INSTANCE_EVENTS.quiesceStarted, INSTANCE_EVENTS.stopped, INSTANCE_EVENTS.healthy];

export class RoutingCache {
  private readonly apps = new Map<string, CachedApp>();
  private readonly overlays = new Map<string, Map<string, Overlay>>();
  /** Version of the last routing update taken in (0: none yet). */
  version = 0;

  constructor(private readonly fronted: readonly string[]) {}

  /** Takes a watch message in; returns the fronted apps it changed. */
  applyUpdate(update: RoutingUpdate): Set<string> {
    const changed = new Set<string>();
    // A full update opens a stream, whose versions may start anew (a restarted controller).
    this.version = update.full ? Number(update.version) : Math.max(this.version, Number(update.version));
    for (const app of update.apps) {
      if (!this.fronted.includes(app.app)) continue;
      this.replaceApp(app);
      changed.add(app.app);
    }
    for (const instance of update.instances) {
      const cached = this.apps.get(instance.app);
      // An instance of an app the watch has not described yet waits for the app's full record.
      if (!cached) continue;
      this.putInstance(instance.app, cached, instance);
      changed.add(instance.app);
    }
    return changed;
  }

  /** Takes an instance event in; true when it changed what the router routes. */
  applyEvent(app: string, instance: string, reason: string, data: Record<string, unknown>): boolean {
    const record = this.apps.get(app)?.instances.get(instance);
    if (!record) return false;
    let overlay: Overlay;
    if (reason === INSTANCE_EVENTS.quiesceStarted || (reason === INSTANCE_EVENTS.stopped && data.expected !== true)) overlay = { state: 'drain' };
    else if (reason === INSTANCE_EVENTS.healthy) overlay = { state: 'ready', edition: typeof data.edition === 'string' && data.edition ? data.edition : record.edition };
    else return false;
    const before = JSON.stringify(this.effective(app, record));
    let perApp = this.overlays.get(app);
    if (!perApp) this.overlays.set(app, (perApp = new Map()));
    perApp.set(instance, overlay);
    return JSON.stringify(this.effective(app, record)) !== before;
  }

  /** The app as the router routes it; undefined until the watch described it. */
  view(app: string): AppView | undefined {
    const cached = this.apps.get(app);
    if (!cached) return undefined;
    return {
      app,
      defaultEditions: cached.defaultEditions,
      routes: cached.routes,
      instances: [...cached.instances.values()].map((i) => this.effective(app, i)),
    };
  }

  knows(app: string): boolean {
    return this.apps.has(app);
  }

  private replaceApp(app: AppRouting): void {
    const before = this.apps.get(app.app);
    const instances = new Map<string, RoutedInstance>();
    const cached: CachedApp = { defaultEditions: [...app.defaultEditions], routes: [...app.routes], instances };
    for (const instance of app.instances) {
      if (instance.removed) continue;
      instances.set(instance.instance, instance);
      if (!before || changedRecord(before.instances.get(instance.instance), instance)) this.overlays.get(app.app)?.delete(instance.instance);
    }
    for (const gone of before?.instances.keys() ?? []) if (!instances.has(gone)) this.overlays.get(app.app)?.delete(gone);
    this.apps.set(app.app, cached);
  }

  private putInstance(app: string, cached: CachedApp, instance: RoutedInstance): void {
    const before = cached.instances.get(instance.instance);
    if (instance.removed) cached.instances.delete(instance.instance);
    else cached.instances.set(instance.instance, instance);
    if (instance.removed || changedRecord(before, instance)) this.overlays.get(app)?.delete(instance.instance);
  }

  private effective(app: string, record: RoutedInstance): RoutedServer {
    const base: RoutedServer = {
      instance: record.instance,
      address: record.address,
      port: record.port,
      edition: record.edition,
      state: asState(record.state),
      held: record.held,
    };
    const overlay = this.overlays.get(app)?.get(record.instance);
    if (!overlay) return base;
    if (overlay.state === 'drain') return base.state === 'maint' ? base : { ...base, state: 'drain' };
    return { ...base, edition: overlay.edition ?? base.edition, state: base.held ? 'drain' : 'ready' };
  }
}

/** An unknown state word is maint: an instance the router cannot place takes no traffic. */
function asState(state: string): AdminState {
  return state === 'ready' || state === 'drain' ? state : 'maint';
}

function changedRecord(before: RoutedInstance | undefined, after: RoutedInstance): boolean {
  if (!before) return true;
  return (
    before.state !== after.state ||
    before.edition !== after.edition ||
    before.held !== after.held ||
    before.address !== after.address ||
    before.port !== after.port
  );
}
