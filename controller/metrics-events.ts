// Metrics read off the event stream (the EventHub): batch durations, drain durations, and what draining instances
// report of their gates (requests in flight, requests held), so the engine and the agents need no hooks of their own.
import { Gauge, Histogram, type Registry } from 'prom-client';
import { INSTANCE_EVENTS, RELEASE_EVENTS, TYPE_PREFIX, instanceType, releaseType, type CloudEvent } from '../common/events.js';

/** A draining instance silent this long (its agent gone, its drained lost) leaves the gauges. */
const DRAIN_STALE_MS = 30_000;

const type = {
  batchFinished: releaseType(RELEASE_EVENTS.batchFinished),
  quiesceStarted: instanceType(INSTANCE_EVENTS.quiesceStarted),
  drainProgress: instanceType(INSTANCE_EVENTS.drainProgress),
  drained: instanceType(INSTANCE_EVENTS.drained),
};
const INSTANCE_PREFIX = `${TYPE_PREFIX}.instance.`;
/** Instance events that end a drain as far as the gauges go. */
const DRAIN_ENDS = new Set(
  [INSTANCE_EVENTS.drained, INSTANCE_EVENTS.stopped, INSTANCE_EVENTS.started, INSTANCE_EVENTS.healthy, INSTANCE_EVENTS.unhealthy, INSTANCE_EVENTS.unreachable].map(instanceType),
);

interface Draining {
  app: string;
  inFlight: number;
  held: number;
  seenUnixMs: number;
}

export interface BatchTimes {
  batchTimes(releaseId: string, batch: number): { startedUnixMs: number; finishedUnixMs: number } | undefined;
}

export class EventMetrics {
  private readonly batchDuration: Histogram<'status'>;
  private readonly drainDuration: Histogram<'outcome'>;
  /** Per instance (key app/instance) while it drains; summed per app at scrape time, so no instance is a label. */
  private readonly draining = new Map<string, Draining>();

  constructor(
    registry: Registry,
    private readonly batches: BatchTimes,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [registry];
    this.batchDuration = new Histogram({
      name: 'fleetwave_batch_duration_seconds',
      help: 'From a batch starting to every instance of it having finished (status done or failed)',
      labelNames: ['status'],
      buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.drainDuration = new Histogram({
      name: 'fleetwave_drain_duration_seconds',
      help: "From quiesce to drained, as the agent measured it (checked drained events); outcome timed_out: the drainage interval ended first",
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    const sum = (field: 'inFlight' | 'held') =>
      function (this: Gauge<'app'>) {
        this.reset();
        for (const [app, total] of self.totals(field)) this.set({ app }, total);
      };
    const self = this;
    new Gauge({
      name: 'fleetwave_drain_in_flight_requests',
      help: "Per app: requests still in flight on its draining instances' gates (last drain.progress of each)",
      labelNames: ['app'],
      registers,
      collect: sum('inFlight'),
    });
    new Gauge({
      name: 'fleetwave_drain_held_requests',
      help: "Per app: new requests held in the queues of its draining instances' gates (last drain.progress of each)",
      labelNames: ['app'],
      registers,
      collect: sum('held'),
    });
  }

  /** Feeds one published or believed event. */
  observe(event: CloudEvent): void {
    const data = event.data ?? {};
    if (event.type === type.batchFinished) return this.batchFinished(event, data);
    if (!event.type.startsWith(INSTANCE_PREFIX)) return;
    const key = String(event.subject);
    if (event.type === type.quiesceStarted || event.type === type.drainProgress) {
      this.draining.set(key, { app: String(data.app ?? ''), inFlight: num(data.inFlight), held: num(data.held), seenUnixMs: this.now() });
      return;
    }
    if (event.type === type.drained && typeof data.elapsedMs === 'number') {
      this.drainDuration.observe({ outcome: data.timedOut === true ? 'timed_out' : 'drained' }, Math.max(0, data.elapsedMs) / 1000);
    }
    if (DRAIN_ENDS.has(event.type)) this.draining.delete(key);
  }

  private batchFinished(event: CloudEvent, data: Record<string, unknown>): void {
    const release = data.release;
    const batch = data.batch;
    if (typeof release !== 'string' || typeof batch !== 'number') return;
    const times = this.batches.batchTimes(release, batch);
    if (!times || times.startedUnixMs <= 0) return;
    const end = times.finishedUnixMs > 0 ? times.finishedUnixMs : Date.parse(event.time);
    this.batchDuration.observe({ status: String(data.status ?? '') }, Math.max(0, end - times.startedUnixMs) / 1000);
  }

  private totals(field: 'inFlight' | 'held'): Map<string, number> {
    const cutoff = this.now() - DRAIN_STALE_MS;
    const out = new Map<string, number>();
    for (const [key, d] of this.draining) {
      if (d.seenUnixMs < cutoff) {
        this.draining.delete(key);
        continue;
      }
      out.set(d.app, (out.get(d.app) ?? 0) + d[field]);
    }
    return out;
  }
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
