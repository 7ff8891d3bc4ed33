// The traffic gate against real HTTP servers on 127.0.0.1: streaming, in-flight counting, holding, overflow, drain.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { watchDrain } from './drain.js';
import type { EventSink } from './events.js';
import { TrafficGate, type GateOptions } from './gate.js';
import { compileAgentOptions } from './options.js';
import { freePort } from './ports.js';
import { get, waitFor } from './test-support.js';

const logger = createLogger({ name: 'gate-test', level: 'silent' });
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function backend(port: number, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  }));
  return server;
}

async function gate(targetPort: number, options: Partial<GateOptions> = {}): Promise<TrafficGate> {
  const g = new TrafficGate({ app: 'shop', host: '127.0.0.1', port: 0, targetPort, healthPath: '/healthz', queueLimit: 100, holdMs: 5000, isAppExpected: () => true, logger, ...options });
  await g.listen();
  cleanups.push(() => g.close());
  return g;
}

function request(port: number, options: http.RequestOptions, body?: (req: http.ClientRequest) => void): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; chunks: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, ...options }, (res) => {
      let text = '';
      let chunks = 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        chunks++;
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers, chunks }));
    });
    req.on('error', reject);
    if (body) body(req);
    else req.end();
  });
}

describe('TrafficGate', () => {
  it('streams a request body to the app and the response back', async () => {
    const port = await freePort();
    await backend(port, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-app': 'yes' });
      // Echo each request chunk as it arrives, upper-cased: the response streams while the request still flows.
      req.on('data', (chunk: Buffer) => res.write(chunk.toString().toUpperCase()));
      req.on('end', () => res.end('|end'));
    });
    const g = await gate(port);
    let sendSecond: () => void = () => {};
    const answer = request(g.port, { method: 'POST', path: '/echo?x=1' }, (req) => {
      req.write('first;');
      sendSecond = () => req.end('second');
    });
    await waitFor('first chunk to reach the app and come back', () => g.inFlight === 1);
    sendSecond();
    const res = await answer;
    expect(res).toMatchObject({ status: 200, body: 'FIRST;SECOND|end' });
    expect(res.headers['x-app']).toBe('yes');
    await waitFor('in flight back to 0', () => g.inFlight === 0);
  });

  it('counts requests in flight', async () => {
    const port = await freePort();
    const waiting: http.ServerResponse[] = [];
    await backend(port, (_req, res) => waiting.push(res));
    const g = await gate(port);
    const counts: number[] = [];
    g.on('inflight', (n: number) => counts.push(n));
    const answers = [get(g.port, '/a'), get(g.port, '/b'), get(g.port, '/c')];
    await waitFor('three in flight', () => g.inFlight === 3 && waiting.length === 3);
    waiting.splice(0).forEach((res) => res.end('done'));
    expect((await Promise.all(answers)).map((a) => a.body)).toEqual(['done', 'done', 'done']);
    await waitFor('none in flight', () => g.inFlight === 0);
    expect(Math.max(...counts)).toBe(3);
  });

  it('holds requests while quiesced and releases them to a new backend', async () => {
    const port = await freePort();
    const old = await backend(port, (_req, res) => res.end('old'));
    const g = await gate(port);
    expect((await get(g.port, '/')).body).toBe('old');
    g.quiesce();
    const health = await get(g.port, '/healthz?probe=lb');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body)).toEqual({ status: 'quiesced' });
    const held = [get(g.port, '/one'), get(g.port, '/two')];
    await waitFor('two held', () => g.held === 2);
    await new Promise<void>((r) => {
      old.close(() => r());
      old.closeAllConnections();
    });
    await backend(port, (req, res) => res.end(`new ${req.url}`));
    g.release();
    expect((await Promise.all(held)).map((r) => r.body)).toEqual(['new /one', 'new /two']);
    expect((await get(g.port, '/healthz')).body).toBe('new /healthz');
  });

  it('answers 503 with Retry-After when the hold queue overflows or a request waits too long', async () => {
    const port = await freePort();
    await backend(port, (_req, res) => res.end('ok'));
    const g = await gate(port, { queueLimit: 1, holdMs: 300 });
    g.quiesce();
    const first = get(g.port, '/first');
    await waitFor('one held', () => g.held === 1);
    const overflow = await get(g.port, '/second');
    expect(overflow.status).toBe(503);
    expect(overflow.headers['retry-after']).toBe('1');
    const timedOut = await first;
    expect(timedOut.status).toBe(503);
    expect(timedOut.headers['retry-after']).toBe('1');
    expect(g.held).toBe(0);
  });

  it('answers a request held past the default hold limit with 503 and Retry-After before a 2 s client gives up', async () => {
    // Given a gate with the agent's default hold limit, quiesced for longer than any client waits
    const port = await freePort();
    await backend(port, (_req, res) => res.end('ok'));
    const g = await gate(port, { holdMs: compileAgentOptions({ bootId: 'b' }).gateHoldMs });
    g.quiesce();
    // When a client that gives up after 2 s asks
    const answer = await request(g.port, { path: '/', timeout: 2000 }, (req) => {
      req.on('timeout', () => req.destroy(new Error('client timed out after 2 s')));
      req.end();
    });
    // Then it gets a clear 503 with Retry-After, not a timeout, and the gate counts it
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('1');
    expect(g.stats()).toMatchObject({ held: 0, gaveUp: 1 });
    // And a request held until a release counts as held, with its time in the figures
    const held = get(g.port, '/held');
    await waitFor('one held', () => g.held === 1);
    g.release();
    expect((await held).body).toBe('ok');
    const figures = g.stats(true);
    expect(figures).toMatchObject({ held: 1, gaveUp: 1 });
    expect(figures.maxMs).toBeGreaterThanOrEqual(figures.p50Ms);
    expect(g.stats()).toMatchObject({ held: 0, gaveUp: 0, maxMs: 0 });
  });

  it('holds requests while a crashed app restarts, and refuses at once when no app should run', async () => {
    const port = await freePort();
    let expected = true;
    const g = await gate(port, { isAppExpected: () => expected });
    const held = get(g.port, '/late');
    await waitFor('held for the restarting app', () => g.held === 1);
    const app = await backend(port, (_req, res) => res.end('back'));
    expect((await held).body).toBe('back');
    await new Promise<void>((r) => {
      app.close(() => r());
      app.closeAllConnections();
    });
    expected = false;
    const refused = await get(g.port, '/');
    expect(refused.status).toBe(503);
  });

  it('publishes drain progress and drained once in-flight reaches 0', async () => {
    const port = await freePort();
    const waiting: http.ServerResponse[] = [];
    await backend(port, (_req, res) => waiting.push(res));
    const g = await gate(port);
    const events: { reason: string; data: Record<string, unknown> }[] = [];
    const sink: EventSink = { publish: (_app, reason, data) => void events.push({ reason, data }) };
    const answers = [get(g.port, '/1'), get(g.port, '/2')];
    await waitFor('two in flight', () => waiting.length === 2);
    g.quiesce();
    const stop = watchDrain(g, 'shop', 10_000, sink);
    cleanups.push(stop);
    expect(events[0]).toMatchObject({ reason: 'quiesce.started', data: { inFlight: 2 } });
    await waitFor('progress published', () => events.some((e) => e.reason === 'drain.progress' && e.data.inFlight === 2));
    waiting.splice(0).forEach((res) => res.end('ok'));
    await Promise.all(answers);
    const drained = await waitFor('drained', () => events.find((e) => e.reason === 'drained'));
    expect(drained.data).toMatchObject({ inFlight: 0, timedOut: false });
    expect(events.filter((e) => e.reason === 'drained')).toHaveLength(1);
  });

  it('reports a drain that ran out of time', async () => {
    const port = await freePort();
    const waiting: http.ServerResponse[] = [];
    await backend(port, (_req, res) => waiting.push(res));
    const g = await gate(port);
    const events: { reason: string; data: Record<string, unknown> }[] = [];
    const answer = get(g.port, '/stuck');
    await waitFor('one in flight', () => waiting.length === 1);
    g.quiesce();
    watchDrain(g, 'shop', 300, { publish: (_app, reason, data) => void events.push({ reason, data }) });
    const drained = await waitFor('drained', () => events.find((e) => e.reason === 'drained'));
    expect(drained.data).toMatchObject({ inFlight: 1, timedOut: true });
    waiting[0]!.end('late');
    expect((await answer).body).toBe('late');
  });

  it('steps aside from its port for an app that drains itself, and takes the same port back', async () => {
    const port = await freePort();
    await backend(port, (_req, res) => res.end('app'));
    const g = await gate(port);
    const servicePort = g.port;
    g.quiesce();
    await g.unlisten();
    expect(g.listening).toBe(false);
    expect(g.quiesced).toBe(false);
    // The port is free for the app itself now.
    const own = await backend(servicePort, (_req, res) => res.end('self'));
    expect((await request(servicePort, { path: '/', agent: false })).body).toBe('self');
    await new Promise<void>((r) => {
      own.close(() => r());
      own.closeAllConnections();
    });
    expect(await g.listen()).toBe(servicePort);
    expect((await request(servicePort, { path: '/', agent: false })).body).toBe('app');
  });

  it('passes websocket-style upgrades through', async () => {
    const port = await freePort();
    const server = await backend(port, (_req, res) => res.end());
    server.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(d));
      socket.on('end', () => socket.destroy());
    });
    const g = await gate(port);
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: g.port, headers: { connection: 'Upgrade', upgrade: 'echo' } });
      req.on('upgrade', (_res, socket) => {
        socket.write('ping');
        socket.once('data', (d: Buffer) => {
          resolve(d.toString());
          socket.destroy();
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(reply).toBe('ping');
    await waitFor('upgrade no longer in flight', () => g.inFlight === 0);
  });
});
