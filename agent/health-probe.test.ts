// The health probe's schedule: at once, then 50 ms doubling to the check's interval; never giving up sooner than before.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { probeDelay, probeUntilHealthy, type HealthProbeSettings } from './health-probe.js';
import { freePort } from './ports.js';

describe('probeDelay', () => {
  it.each([
    [0, 50],
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 500],
    [40, 500],
  ])('waits %i doublings: %i ms (50 ms doubling up to a 500 ms interval)', (step, ms) => {
    expect(probeDelay(step, 50, 500)).toBe(ms);
  });
});

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** An app whose health path answers 503 until `healthyAfter` probes came, recording when each came. */
async function app(healthyAfter: number): Promise<{ port: number; times: number[] }> {
  const times: number[] = [];
  const server = http.createServer((_req, res) => {
    times.push(Date.now());
    res.writeHead(times.length > healthyAfter ? 200 : 503).end();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, times };
}

const running = { state: 'running' };
const settings = (extra: Partial<HealthProbeSettings> = {}): HealthProbeSettings => ({ path: '/healthz', expectedStatus: 200, retries: 0, intervalMs: 400, timeoutMs: 1000, ...extra });

describe('probeUntilHealthy', () => {
  it('probes at once, then backs off from the initial interval, doubling', async () => {
    const target = await app(4);
    const outcome = await probeUntilHealthy({ appPort: target.port, supervisor: running }, settings({ initialIntervalMs: 20 }), new AbortController().signal);
    expect(outcome).toMatchObject({ healthy: true, tries: 5 });
    const gaps = target.times.slice(1).map((t, i) => t - target.times[i]!);
    // 20, 40, 80, 160 ms (timers fire no earlier than asked); each wait at least the one before.
    expect(gaps.map((g, i) => g >= 20 * 2 ** i - 2)).toEqual([true, true, true, true]);
  });

  it('keeps the initial pace while nothing listens, and gives up only after the tries and their old time are spent', async () => {
    const port = await freePort();
    const started = Date.now();
    const outcome = await probeUntilHealthy({ appPort: port, supervisor: running }, settings({ retries: 2, intervalMs: 100, initialIntervalMs: 10 }), new AbortController().signal);
    expect(outcome.healthy).toBe(false);
    expect(outcome.error).toMatch(/ECONNREFUSED/);
    // 2 retries at 100 ms used to take 200 ms: refused probes every 10 ms fill that time instead of ending after 3.
    expect(Date.now() - started).toBeGreaterThanOrEqual(195);
    expect(outcome.tries).toBeGreaterThan(3);
  });
});
