// The event-fed metrics: draining instances summed per app (no instance label), stale ones dropped, drain and batch durations.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CloudEvent } from '../common/events.js';
import { EventMetrics } from './metrics-events.js';

function event(type: string, subject: string, data: Record<string, unknown>): CloudEvent {
  return { specversion: '1.0', id: 'x', source: 's', type: `io.fleetwave.${type}`, subject, time: new Date(5_000).toISOString(), datacontenttype: 'application/json', data };
}

describe('EventMetrics', () => {
  it('sums the gate figures of draining instances per app, and drops an instance at drained or when stale', async () => {
    const registry = new Registry();
    let now = 0;
    const m = new EventMetrics(registry, { batchTimes: () => undefined }, () => now);
    m.observe(event('instance.drain.progress', 'shop/a1', { app: 'shop', instance: 'a1', inFlight: 3, held: 1 }));
    m.observe(event('instance.drain.progress', 'shop/a2', { app: 'shop', instance: 'a2', inFlight: 2, held: 4 }));
    m.observe(event('instance.quiesce.started', 'cart/a1', { app: 'cart', instance: 'a1', inFlight: 7 }));
    let text = await registry.metrics();
    expect(text).toMatch(/^fleetwave_drain_in_flight_requests\{app="shop"\} 5$/m);
    expect(text).toMatch(/^fleetwave_drain_held_requests\{app="shop"\} 5$/m);
    expect(text).toMatch(/^fleetwave_drain_in_flight_requests\{app="cart"\} 7$/m);

    m.observe(event('instance.drained', 'shop/a1', { app: 'shop', instance: 'a1', inFlight: 0, timedOut: false, elapsedMs: 800 }));
    now = 31_000;
    m.observe(event('instance.drain.progress', 'shop/a2', { app: 'shop', instance: 'a2', inFlight: 1, held: 0 }));
    text = await registry.metrics();
    expect(text).toMatch(/^fleetwave_drain_in_flight_requests\{app="shop"\} 1$/m);
    expect(text).not.toMatch(/app="cart"/);
    expect(text).toMatch(/^fleetwave_drain_duration_seconds_count\{outcome="drained"\} 1$/m);
    expect(text).toMatch(/^fleetwave_drain_duration_seconds_sum\{outcome="drained"\} 0.8$/m);
  });

  it('times a batch from its rows when batch.finished is published', async () => {
    const registry = new Registry();
    const m = new EventMetrics(registry, { batchTimes: (id, n) => (id === 'r1' && n === 2 ? { startedUnixMs: 1_000, finishedUnixMs: 4_000 } : undefined) });
    m.observe(event('release.batch.finished', 'shop/r1', { app: 'shop', release: 'r1', batch: 2, status: 'done' }));
    m.observe(event('release.batch.finished', 'shop/r9', { app: 'shop', release: 'r9', batch: 1, status: 'done' }));
    const text = await registry.metrics();
    expect(text).toMatch(/^fleetwave_batch_duration_seconds_sum\{status="done"\} 3$/m);
    expect(text).toMatch(/^fleetwave_batch_duration_seconds_count\{status="done"\} 1$/m);
  });
});
