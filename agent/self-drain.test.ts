// SelfDrain against a real local HTTP server standing in for an app that drains itself.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { isSelfDrained, SelfDrain } from './self-drain.js';

const logger = createLogger({ name: 'self-drain-test', level: 'silent' });
const spec = (extra: Partial<AppSpec>): AppSpec => ({ name: 'solo', startCommand: ['x'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, drainMode: 'self', quiesceHook: '/quiesce', inflightPath: '/inflight', updateOrder: '', startGraceMs: 0, healthInitialIntervalMs: 0, holdMs: 0, ...extra });

/** An app whose in-flight count the test sets; it records the hook calls. */
async function fakeApp(inflight: () => unknown, hookStatus = 200) {
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    if (req.url === '/quiesce') res.writeHead(hookStatus).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(inflight()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, calls };
}
const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

describe('SelfDrain', () => {
  it('is chosen by drain mode self only', () => {
    expect(isSelfDrained(spec({}))).toBe(true);
    expect(isSelfDrained(spec({ drainMode: '' }))).toBe(false);
    expect(isSelfDrained(undefined)).toBe(false);
  });

  it('POSTs the hook, reads the count, and reports it as it falls to 0', async () => {
    let count = 2;
    const app = await fakeApp(() => ({ inFlight: count }));
    const drain = await SelfDrain.quiesce({ app: 'solo', port: app.port, pid: process.pid, spec: spec({}), logger });
    expect(app.calls.slice(0, 2)).toEqual(['POST /quiesce', 'GET /inflight']);
    expect(drain.inFlight).toBe(2);
    const seen: number[] = [];
    const zero = new Promise<void>((resolve) => {
      const onChange = (n: number) => {
        seen.push(n);
        if (n === 0) {
          drain.off('inflight', onChange);
          resolve();
        }
      };
      drain.on('inflight', onChange);
    });
    count = 1;
    await new Promise((r) => drain.once('inflight', r));
    count = 0;
    await zero;
    expect(seen).toEqual([1, 0]);
    // Nobody listens any more: polling stopped (no next read is scheduled).
    expect(drain.polling).toBe(false);
  });

  it('accepts a bare number as the count', async () => {
    const app = await fakeApp(() => 3);
    const drain = await SelfDrain.quiesce({ app: 'solo', port: app.port, pid: process.pid, spec: spec({}), logger });
    expect(drain.inFlight).toBe(3);
    drain.close();
  });

  it('sends a signal hook to the process', async () => {
    const app = await fakeApp(() => ({ inFlight: 0 }));
    let got = '';
    const onSignal = () => void (got = 'SIGUSR2');
    process.once('SIGUSR2', onSignal);
    const drain = await SelfDrain.quiesce({ app: 'solo', port: app.port, pid: process.pid, spec: spec({ quiesceHook: 'SIGUSR2' }), logger });
    await new Promise((r) => setImmediate(r));
    expect(got).toBe('SIGUSR2');
    expect(app.calls).toEqual(['GET /inflight']);
    drain.close();
  });

  it('fails the quiesce when the hook refuses, and reads nothing when no process runs', async () => {
    const app = await fakeApp(() => ({ inFlight: 0 }), 500);
    await expect(SelfDrain.quiesce({ app: 'solo', port: app.port, pid: process.pid, spec: spec({}), logger })).rejects.toThrow(/quiesce hook POST \/quiesce answered 500/);
    const idle = await SelfDrain.quiesce({ app: 'solo', port: app.port, pid: undefined, spec: spec({}), logger });
    expect(idle.inFlight).toBe(0);
  });

  it('refuses a count that is not one', async () => {
    const app = await fakeApp(() => ({ busy: true }));
    await expect(SelfDrain.quiesce({ app: 'solo', port: app.port, pid: process.pid, spec: spec({}), logger })).rejects.toThrow(/no in-flight count/);
  });
});
