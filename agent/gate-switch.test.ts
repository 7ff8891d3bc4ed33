// The gate's one-step switch between two app processes (start-first): new requests go to the new port at once, a
// request in flight on the old one finishes there, and idle() tells when the old port has nothing in flight.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { TrafficGate } from './gate.js';
import { freePort } from './ports.js';
import { get, waitFor } from './test-support.js';

const logger = createLogger({ name: 'gate-switch-test', level: 'silent' });
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A backend answering `name`; requests to /wait are parked until the test ends them. */
async function backend(name: string): Promise<{ port: number; parked: http.ServerResponse[]; connections: () => number }> {
  const port = await freePort();
  const parked: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => (req.url === '/wait' ? parked.push(res) : res.end(name)));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  }));
  let open = 0;
  server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  return { port, parked, connections: () => open };
}

async function gate(targetPort: number): Promise<TrafficGate> {
  const g = new TrafficGate({ app: 'shop', host: '127.0.0.1', port: 0, targetPort, healthPath: '/healthz', queueLimit: 100, holdMs: 5000, isAppExpected: () => true, logger });
  await g.listen();
  cleanups.push(() => g.close());
  return g;
}

describe('TrafficGate.setTarget', () => {
  it('sends new requests to the new port while one in flight finishes on the old', async () => {
    const oldApp = await backend('old');
    const newApp = await backend('new');
    const g = await gate(oldApp.port);
    const keepAlive = new http.Agent({ keepAlive: true });
    cleanups.push(() => keepAlive.destroy());
    expect((await get(g.port, '/', keepAlive)).body).toBe('old');

    const inFlight = get(g.port, '/wait');
    await waitFor('the slow request to reach the old app', () => oldApp.parked.length === 1);
    expect(g.inFlightOn(oldApp.port)).toBe(1);

    g.setTarget(newApp.port);
    expect(g.targetPort).toBe(newApp.port);
    // Reused client connection or a new one: either way the new app answers.
    expect((await get(g.port, '/', keepAlive)).body).toBe('new');
    expect((await get(g.port, '/')).body).toBe('new');
    expect(g.inFlightOn(oldApp.port)).toBe(1);

    const idle = g.idle(oldApp.port, 10_000);
    oldApp.parked[0]!.end('old, finished');
    expect(await idle).toBe(true);
    expect((await inFlight).body).toBe('old, finished');
    expect(g.inFlightOn(oldApp.port)).toBe(0);
    // The gate's pool to the old app is gone once its last request ended, so the old process can close.
    await waitFor('no gate connection left to the old app', () => oldApp.connections() === 0);
  });

  it('idle() gives up after its timeout while a request stays in flight', async () => {
    const oldApp = await backend('old');
    const newApp = await backend('new');
    const g = await gate(oldApp.port);
    const inFlight = get(g.port, '/wait').catch(() => undefined);
    await waitFor('the request to reach the old app', () => oldApp.parked.length === 1);
    g.setTarget(newApp.port);
    expect(await g.idle(oldApp.port, 50)).toBe(false);
    expect(await g.idle(newApp.port, 50)).toBe(true);
    oldApp.parked[0]!.end('done');
    await inFlight;
  });
});
