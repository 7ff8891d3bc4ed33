// Prometheus metrics of the controller, on a registry of its own (so tests can run several controllers).
// docs/metrics.md lists every series; a test scrapes a real controller and compares the names.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store } from './store/store.js';
import type { EngineObserver } from './engine/engine.js';
import type { EventHub } from './event-hub.js';
import { EventMetrics } from './metrics-events.js';
import type { NotifyObserver } from './notify.js';

export class ControllerMetrics implements EngineObserver, NotifyObserver {
  readonly registry = new Registry();
  readonly commandsSent: Counter<'kind'>;
  readonly commandResults: Counter<'outcome'>;
  readonly stepDuration: Histogram<'step' | 'status'>;
  readonly eventsPublished: Counter<'source'>;
  readonly eventsRejected: Counter<'reason'>;
  /** From an atomic release's route change to every router fronting the app having applied it (or the deadline). */
  readonly routerSync: Histogram<'outcome'>;
  private readonly stepFailures: Counter<'step'>;
  private readonly notificationsDelivered: Counter<'notifier'>;
  private readonly notificationAttemptsFailed: Counter<'notifier'>;
  private readonly notificationsDead: Counter<'notifier'>;

  constructor(store: Store, connectedAgents: () => number) {
    const registers = [this.registry];
    new Gauge({
      name: 'fleetwave_agents_connected',
      help: 'Agents with an open session',
      registers,
      collect() {
        this.set(connectedAgents());
      },
    });
    new Gauge({
      name: 'fleetwave_agents_unreachable',
      help: 'Known agents without a session (heartbeat timeout, stream closed, or not back since the controller started)',
      registers,
      collect() {
        this.set(store.countAgentsByStatus().find((row) => row.status === 'unreachable')?.count ?? 0);
      },
    });
    new Gauge({
      name: 'fleetwave_releases',
      help: 'Releases by status',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const row of store.countReleasesByStatus()) this.set({ status: row.status }, row.count);
      },
    });
    new Gauge({
      name: 'fleetwave_outbox_pending',
      help: 'Commands written to the outbox without a result yet',
      registers,
      collect() {
        this.set(store.countOutbox().pending);
      },
    });
    this.commandsSent = new Counter({ name: 'fleetwave_commands_sent_total', help: 'Commands written to agent streams (re-sends included)', labelNames: ['kind'], registers });
    this.commandResults = new Counter({ name: 'fleetwave_command_results_total', help: 'Command results received', labelNames: ['outcome'], registers });
    this.eventsPublished = new Counter({ name: 'fleetwave_events_total', help: 'Events published or received', labelNames: ['source'], registers });
    this.eventsRejected = new Counter({ name: 'fleetwave_events_rejected_total', help: 'Agent events refused by validation (docs/events.md)', labelNames: ['reason'], registers });
    this.stepDuration = new Histogram({
      name: 'fleetwave_step_duration_seconds',
      help: 'Duration of release steps per instance',
      labelNames: ['step', 'status'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.stepFailures = new Counter({ name: 'fleetwave_step_failures_total', help: 'Release steps that ended failed, by step kind (download, quiesce, drain, restart, ...)', labelNames: ['step'], registers });
    this.notificationsDelivered = new Counter({ name: 'fleetwave_notifications_delivered_total', help: 'Webhook deliveries a receiver acknowledged with a 2xx', labelNames: ['notifier'], registers });
    this.notificationAttemptsFailed = new Counter({
      name: 'fleetwave_notification_attempts_failed_total',
      help: 'Webhook attempts that failed (non-2xx, timeout, connection error); each is retried until the last',
      labelNames: ['notifier'],
      registers,
    });
    this.notificationsDead = new Counter({ name: 'fleetwave_notifications_dead_letter_total', help: 'Webhook deliveries given up after their last attempt (kept as dead in the store)', labelNames: ['notifier'], registers });
    new Gauge({
      name: 'fleetwave_notifications_pending',
      help: 'Webhook deliveries waiting for their first or next attempt',
      registers,
      collect() {
        this.set(store.notifications.countPending());
      },
    });
    this.routerSync = new Histogram({
      name: 'fleetwave_router_sync_seconds',
      help: 'Time from a routing change an atomic release waits on to every router having applied it (outcome applied), or to the deadline (outcome deadline)',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** Gauges of the routing hub, read at scrape time. */
  observeRouting(stats: () => { routers: number; lag: Array<{ router: string; seconds: number }> }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'fleetwave_routers_connected',
      help: 'Open WatchRouting streams (routers)',
      registers,
      collect() {
        this.set(stats().routers);
      },
    });
    new Gauge({
      name: 'fleetwave_router_ack_lag_seconds',
      help: 'Per router: seconds since the oldest routing update it has not acked (0: it applied everything sent)',
      labelNames: ['router'],
      registers,
      collect() {
        this.reset();
        for (const { router, seconds } of stats().lag) this.set({ router }, seconds);
      },
    });
  }

  /** Batch and drain durations, gate figures of draining instances: from the events the controller publishes or believes. */
  observeEvents(hub: EventHub, store: Store): () => void {
    const events = new EventMetrics(this.registry, store);
    return hub.subscribe((_subject, event) => events.observe(event));
  }

  stepFinished(step: string, status: string, seconds: number): void {
    this.stepDuration.observe({ step, status }, seconds);
    if (status === 'failed') this.stepFailures.inc({ step });
  }

  delivered(notifier: string): void {
    this.notificationsDelivered.inc({ notifier });
  }

  attemptFailed(notifier: string): void {
    this.notificationAttemptsFailed.inc({ notifier });
  }

  dead(notifier: string): void {
    this.notificationsDead.inc({ notifier });
  }
}
