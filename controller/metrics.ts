// Prometheus metrics of the controller, on a registry of its own (so tests can run several controllers).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store } from './store/store.js';
import type { EngineObserver } from './engine/engine.js';

export class ControllerMetrics implements EngineObserver {
  readonly registry = new Registry();
  readonly commandsSent: Counter<'kind'>;
  readonly commandResults: Counter<'outcome'>;
  readonly stepDuration: Histogram<'step' | 'status'>;
  readonly eventsPublished: Counter<'source'>;
  readonly eventsRejected: Counter<'reason'>;

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
  }

  stepFinished(step: string, status: string, seconds: number): void {
    this.stepDuration.observe({ step, status }, seconds);
  }
}
