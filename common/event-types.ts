// The names of every event fleetwave publishes: the reasons and the CloudEvents `type` values. Nothing here needs
// Node, so the web console (controller/console) imports the same list the daemons use; common/events.ts re-exports it
// with the subjects and the envelope.

export const TYPE_PREFIX = 'io.fleetwave';

/** Events about one application instance, published by the agent that serves it (the controller: unreachable, reachable). */
export const INSTANCE_EVENTS = {
  /** The instance stopped taking new work; drain begins. */
  quiesceStarted: 'quiesce.started',
  /** In-flight requests while draining (every 250 ms or on change). */
  drainProgress: 'drain.progress',
  /** No request in flight any more, or the drainage interval ended. */
  drained: 'drained',
  /** The app process stopped. */
  stopped: 'stopped',
  /** The app process started on an edition. */
  started: 'started',
  /** The health check passed; the instance takes traffic again. */
  healthy: 'healthy',
  /** The health check failed after its retries. */
  unhealthy: 'unhealthy',
  /** The controller lost the instance's agent (heartbeat timeout or stream closed); published by the controller. */
  unreachable: 'unreachable',
  /** The instance's agent is connected again after being unreachable; published by the controller. */
  reachable: 'reachable',
} as const;

/** Instance events only the controller publishes (on the instance's subject, source `fleetwave/controller`). */
export const CONTROLLER_INSTANCE_EVENTS: readonly InstanceEventReason[] = [INSTANCE_EVENTS.unreachable, INSTANCE_EVENTS.reachable];

/** Events about a release, published by the controller. */
export const RELEASE_EVENTS = {
  /** The release moved from one status to another. */
  statusChanged: 'status.changed',
  /** A batch began (its instances start their steps). */
  batchStarted: 'batch.started',
  /** Every instance of a batch finished (ok or failed). */
  batchFinished: 'batch.finished',
  /** The release waits for an operator (approval, trigger, continue). */
  checkpointWaiting: 'checkpoint.waiting',
  /** One instance moved to a new step or status within the release. */
  instanceStep: 'instance.step',
  /** The release was created, with its planned batches. */
  created: 'created',
  /** Atomic: every router fronting the app sends default traffic to the new edition now. */
  switched: 'switched',
} as const;

export type InstanceEventReason = (typeof INSTANCE_EVENTS)[keyof typeof INSTANCE_EVENTS];
export type ReleaseEventReason = (typeof RELEASE_EVENTS)[keyof typeof RELEASE_EVENTS];

/** All CloudEvents `type` values fleetwave emits. */
export const EVENT_TYPES: readonly string[] = [
  ...Object.values(INSTANCE_EVENTS).map((r) => `${TYPE_PREFIX}.instance.${r}`),
  ...Object.values(RELEASE_EVENTS).map((r) => `${TYPE_PREFIX}.release.${r}`),
];

export const instanceType = (reason: InstanceEventReason): string => `${TYPE_PREFIX}.instance.${reason}`;
export const releaseType = (reason: ReleaseEventReason): string => `${TYPE_PREFIX}.release.${reason}`;

/**
 * What a reader of the event stream (GET /events) asks for: `types` exact types or prefixes ending in '.'
 * (empty: all), and `app` / `release` the events' data must name (empty: any). Every part must hold.
 */
export interface EventFilter {
  types: readonly string[];
  app: string;
  release: string;
}

/** The one-line reason `types` is not a list of known types and prefixes, or null when it is. */
export function badEventTypes(types: readonly string[]): string | null {
  for (const t of types) {
    const known = t.endsWith('.') ? EVENT_TYPES.some((e) => e.startsWith(t)) : EVENT_TYPES.includes(t);
    if (!known) return `types: '${t}' is neither an event type nor a prefix of one ending in '.' (docs/events.md)`;
  }
  return null;
}

export function matchesEventFilter(f: EventFilter, type: string, data: { app?: unknown; release?: unknown } | undefined): boolean {
  if (f.app && data?.app !== f.app) return false;
  if (f.release && data?.release !== f.release) return false;
  return f.types.length === 0 || f.types.some((t) => (t.endsWith('.') ? type.startsWith(t) : type === t));
}
