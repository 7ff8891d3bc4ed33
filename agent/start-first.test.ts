// The agent in-process under a fake controller: a start-first RestartApp under load, one whose new edition stays
// unhealthy, and the stop-first fallback below the free-memory floor.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { runAgent, type AgentHandle } from './main.js';
import { compileAgentOptions } from './options.js';
import { chooseOrder } from './start-first.js';
import { alive, buildPackage, FakeController, get, serveFiles, tempDir, waitFor, type BuiltPackage } from './test-support.js';

/** Answers its edition and pid; /hold answers only once HOLD_FILE exists; /healthz answers 500 when HEALTH_FAILS is set. */
const APP = `
const http = require('node:http');
const fs = require('node:fs');
const edition = process.env.FLEETWAVE_EDITION;
const server = http.createServer((req, res) => {
  res.setHeader('x-pid', String(process.pid));
  if (req.url === '/healthz') { res.statusCode = process.env.HEALTH_FAILS && edition === 'bad' ? 500 : 200; return res.end('health'); }
  if (req.url === '/hold') {
    const poll = setInterval(() => fs.existsSync(process.env.HOLD_FILE) && (clearInterval(poll), res.end(edition)), 20);
    return;
  }
  res.end(edition);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

describe('a start-first restart', () => {
  const dir = tempDir('start-first');
  const holdFile = join(dir.path, 'hold-released');
  const spec: AppSpec = {
    name: 'shop',
    startCommand: [process.execPath, 'server.js'],
    env: { HOLD_FILE: holdFile, HEALTH_FAILS: '1' },
    portEnv: 'PORT',
    healthPath: '/healthz',
    // Long enough that only the drain (not the stop timeout) ends the wait for the held request.
    stopTimeoutMs: 30_000,
    drainMode: '',
    quiesceHook: '',
    inflightPath: '',
    updateOrder: 'start-first',
    startGraceMs: 0,
    healthInitialIntervalMs: 0, holdMs: 0,
  };
  const health = { path: '/healthz', expectedStatus: 200, retries: 20, intervalMs: 50, timeoutMs: 1000 };
  const controller = new FakeController();
  const packages: Record<string, BuiltPackage> = {};
  let files: Awaited<ReturnType<typeof serveFiles>>;
  let agent: AgentHandle;
  let gatePort = 0;
  const dataDir = join(dir.path, 'agent');
  const record = () => JSON.parse(readFileSync(join(dataDir, 'apps.json'), 'utf8')).shop as { activeEdition: string; internalPort: number; pid: number };

  beforeAll(async () => {
    for (const edition of ['1.0', '2.0', 'bad']) packages[edition] = await buildPackage(dir.path, `shop-${edition}`, { 'server.js': APP });
    files = await serveFiles(dir.path);
    await controller.start();
    agent = await runAgent(
      compileAgentOptions({ controller: `127.0.0.1:${controller.port}`, id: 'sf-1', instance: ['shop:0'], dataDir, nats: '', insecure: true, logLevel: process.env.AGENT_TEST_LOG ?? 'silent', gateHost: '127.0.0.1', startGraceMs: 100 }),
    );
    gatePort = agent.servicePorts().shop!;
    await waitFor('hello', () => controller.hellos[0]);
    for (const [edition, pkg] of Object.entries(packages)) {
      const download = { edition, url: `${files.url}/shop-${edition}.tar.gz`, sha256: pkg.sha256, size: pkg.size, format: 'tar.gz', fileName: '', keepEditions: 5 };
      expect(await controller.run({ commandId: `d-${edition}`, downloadPackage: download })).toMatchObject({ ok: true });
    }
    expect(await controller.run({ commandId: 's1', startApp: { edition: '1.0', app: spec } })).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 'h1', healthCheck: health })).toMatchObject({ ok: true });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    controller.stop();
    await files?.close();
    dir.remove();
  });

  it('starts the new edition beside the old, switches with no failed request, then drains and stops the old', async () => {
    const before = record();
    const oldPid = before.pid;
    // Given a request held in flight on the old process and clients hitting the service port throughout
    const held = get(gatePort, '/hold');
    const failures: string[] = [];
    const pids = new Set<number>();
    let oldAliveWhenNewAnswered: boolean | undefined;
    let running = true;
    const client = new http.Agent({ keepAlive: true });
    const load = Promise.all(
      [0, 1, 2].map(async () => {
        while (running) {
          const res = await get(gatePort, '/', client).catch((err: Error) => ({ status: 0, body: err.message, headers: {} as http.IncomingHttpHeaders }));
          if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
          const pid = Number(res.headers['x-pid']);
          if (pid && pid !== oldPid && oldAliveWhenNewAnswered === undefined) oldAliveWhenNewAnswered = alive(oldPid);
          if (pid) pids.add(pid);
        }
      }),
    );

    // When the controller asks for a start-first restart onto 2.0
    const restart = controller.run({ commandId: 'r1', restartApp: { edition: '2.0', app: spec, updateOrder: 'start-first' } });
    await waitFor('the new process to answer through the gate', () => oldAliveWhenNewAnswered !== undefined, 20_000);
    // Then the old process is still alive, serving the held request, while the new one takes the new requests
    expect(oldAliveWhenNewAnswered).toBe(true);
    expect(alive(oldPid)).toBe(true);
    expect(controller.results.some((r) => r.commandId === 'r1')).toBe(false);

    // And once the held request ends on the old process, the old process is stopped and the restart answers
    writeFileSync(holdFile, '');
    expect(await held).toMatchObject({ status: 200, body: '1.0' });
    const result = await restart;
    running = false;
    await load;
    client.destroy();
    expect(result).toMatchObject({ ok: true, activeEdition: '2.0', updateOrder: 'start-first' });
    expect(failures).toEqual([]);
    expect(pids.size).toBe(2);
    await waitFor('the old process to be gone', () => !alive(oldPid));
    const after = record();
    expect(after.activeEdition).toBe('2.0');
    expect(after.internalPort).not.toBe(before.internalPort);
    expect(after.pid).not.toBe(oldPid);
    expect(alive(after.pid)).toBe(true);
    expect(await controller.run({ commandId: 'h2', healthCheck: health })).toMatchObject({ ok: true, activeEdition: '2.0' });
  }, 60_000);

  it('stops a new edition that stays unhealthy and never touches the old one', async () => {
    const before = record();
    const result = await controller.run({ commandId: 'r2', timeoutMs: 6000, restartApp: { edition: 'bad', app: spec, updateOrder: 'start-first' } });
    expect(result).toMatchObject({ ok: false, activeEdition: '2.0', updateOrder: 'start-first' });
    expect(result.error).toMatch(/edition bad unhealthy after \d+ tries: GET \/healthz answered 500.*old edition still serves/);
    const after = record();
    expect(after).toMatchObject({ activeEdition: '2.0', internalPort: before.internalPort, pid: before.pid });
    expect(alive(before.pid)).toBe(true);
    expect(await get(gatePort, '/')).toMatchObject({ status: 200, body: '2.0' });
  }, 30_000);
});

describe('chooseOrder', () => {
  const spec = { updateOrder: 'start-first', drainMode: '' } as AppSpec;
  it('falls back to stop-first below the free-memory floor, and says why', () => {
    expect(chooseOrder('', spec, 256 * 2 ** 20, 1024 * 2 ** 20)).toEqual({ order: 'start-first', reason: '' });
    const low = chooseOrder('start-first', spec, 256 * 2 ** 20, 100 * 2 ** 20);
    expect(low.order).toBe('stop-first');
    expect(low.reason).toMatch(/100 MiB free, below the start-first floor of 256 MiB/);
  });
  it('keeps stop-first when asked, for an older controller, and for an app that drains itself', () => {
    expect(chooseOrder('stop-first', spec, 0, 1)).toEqual({ order: 'stop-first', reason: '' });
    expect(chooseOrder('', { ...spec, updateOrder: '' }, 0, 1)).toEqual({ order: 'stop-first', reason: '' });
    expect(chooseOrder('start-first', { ...spec, drainMode: 'self' }, 0, 1).order).toBe('stop-first');
  });
});
