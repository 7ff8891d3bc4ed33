// The agent end to end in-process: a fake controller drives download → start → health → quiesce → restart → health.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { runAgent, type AgentHandle } from './main.js';
import { compileAgentOptions } from './options.js';
import { alive, buildPackage, FakeController, get, serveFiles, tempDir, waitFor, type BuiltPackage } from './test-support.js';

const spec: AppSpec = { name: 'shop', startCommand: [process.execPath, 'server.js'], env: { GREETING: 'hi' }, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 5000, drainMode: '', quiesceHook: '', inflightPath: '', updateOrder: '', startGraceMs: 0, healthInitialIntervalMs: 0, holdMs: 0 };
const health = { path: '/healthz', expectedStatus: 200, retries: 20, intervalMs: 50, timeoutMs: 1000 };

describe('agent', () => {
  const dir = tempDir('agent');
  let controller = new FakeController();
  let dataDir = '';
  let files: Awaited<ReturnType<typeof serveFiles>>;
  let agent: AgentHandle;
  let v1: BuiltPackage;
  let v2: BuiltPackage;
  let gatePort = 0;

  beforeAll(async () => {
    v1 = await buildPackage(dir.path, 'shop-1.0');
    v2 = await buildPackage(dir.path, 'shop-2.0');
    files = await serveFiles(dir.path);
    await controller.start();
    dataDir = `${dir.path}/agent`;
    agent = await runAgent(agentOptions());
    gatePort = agent.servicePorts().shop!;
  });

  const agentOptions = () =>
    compileAgentOptions({
      controller: `127.0.0.1:${controller.port}`,
      id: 'agent-1',
      instance: ['shop:0'],
      dataDir,
      nats: '',
      insecure: true,
      logLevel: process.env.AGENT_TEST_LOG ?? 'silent',
      gateHost: '127.0.0.1',
      startGraceMs: 200,
      resetHook: `echo "$FLEETWAVE_APP $FLEETWAVE_EDITION" > ${dir.path}/hook-ran`,
    });

  afterAll(async () => {
    await agent?.stop();
    controller.stop();
    await files?.close();
    dir.remove();
  });

  it('says hello with its instances and heartbeats', async () => {
    const hello = await waitFor('hello', () => controller.hellos[0]);
    expect(hello).toMatchObject({ agentId: 'agent-1', group: 'default' });
    expect(hello.instances).toEqual([{ app: 'shop', servicePort: gatePort, activeEdition: '', keptEditions: [], processState: 'stopped', quiesced: false }]);
    await waitFor('two heartbeats', () => controller.heartbeats >= 2);
  });

  it('releases 2.0 over 1.0 without failing a request through the gate', async () => {
    const download = (id: string, edition: string, pkg: BuiltPackage) =>
      controller.run({ commandId: id, downloadPackage: { edition, url: `${files.url}/shop-${edition}.tar.gz`, sha256: pkg.sha256, size: pkg.size, format: 'tar.gz', fileName: '', keepEditions: 3 } });

    expect(await download('c1', '1.0', v1)).toMatchObject({ ok: true, error: '' });
    expect(await controller.run({ commandId: 'c2', startApp: { edition: '1.0', app: spec } })).toMatchObject({ ok: true, activeEdition: '1.0' });
    expect(await controller.run({ commandId: 'c3', healthCheck: health })).toMatchObject({ ok: true });
    expect(await get(gatePort, '/')).toMatchObject({ status: 200, body: '1.0' });

    // Steady traffic through the gate for the whole upgrade.
    const seen: string[] = [];
    const failures: string[] = [];
    let running = true;
    const client = new http.Agent({ keepAlive: true });
    const load = Promise.all(
      [0, 1, 2, 3].map(async (n) => {
        while (running) {
          const res = await get(gatePort, n === 0 ? '/slow' : '/', client).catch((err: Error) => ({ status: 0, body: err.message }));
          if (res.status === 200) seen.push(res.body);
          else failures.push(`${res.status} ${res.body}`);
        }
      }),
    );

    expect(await download('c4', '2.0', v2)).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 'c5', quiesce: { drainMs: 3000 } })).toMatchObject({ ok: true });
    expect((await get(gatePort, '/healthz')).status).toBe(503);
    const restart = await controller.run({ commandId: 'c6', restartApp: { edition: '2.0', app: spec, updateOrder: '' } });
    expect(restart).toMatchObject({ ok: true, activeEdition: '2.0', replayed: false });
    expect(restart.instance).toMatchObject({ app: 'shop', activeEdition: '2.0', keptEditions: ['2.0', '1.0'], processState: 'running', quiesced: true });
    expect(await controller.run({ commandId: 'c7', healthCheck: health })).toMatchObject({ ok: true, activeEdition: '2.0' });
    await waitFor('traffic on 2.0', () => seen.includes('2.0'));
    running = false;
    await load;
    client.destroy();

    expect(failures).toEqual([]);
    expect(seen).toContain('1.0');
    expect((await get(gatePort, '/healthz')).status).toBe(200);

    const hello = controller.hellos.at(-1)!;
    expect(hello.agentId).toBe('agent-1');
  });

  it('answers a re-delivered command id from its journal without running it again', async () => {
    const pidBefore = (await waitFor('running pid', () => controller.results.find((r) => r.commandId === 'c6')))!;
    expect(pidBefore.ok).toBe(true);
    const downloadsBefore = files.requests();
    const replay = await controller.run({ commandId: 'c6', restartApp: { edition: '2.0', app: spec, updateOrder: '' } });
    expect(replay).toMatchObject({ ok: true, replayed: true, activeEdition: '2.0', startedUnixMs: pidBefore.startedUnixMs });
    const again = await controller.run({ commandId: 'c4', downloadPackage: { edition: '2.0', url: `${files.url}/shop-2.0.tar.gz`, sha256: v2.sha256, size: v2.size, format: 'tar.gz', fileName: '', keepEditions: 3 } });
    expect(again.replayed).toBe(true);
    expect(files.requests()).toBe(downloadsBefore);
    expect((await get(gatePort, '/')).body).toBe('2.0');
  });

  it('refuses a package whose sha256 does not match', async () => {
    const result = await controller.run({ commandId: 'c8', downloadPackage: { edition: '3.0', url: `${files.url}/shop-2.0.tar.gz`, sha256: 'a'.repeat(64), size: v2.size, format: 'tar.gz', fileName: '', keepEditions: 3 } });
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/sha256 mismatch/);
  });

  it('reconnects after the controller restarts and reports what it runs', async () => {
    const port = controller.port;
    controller.stop();
    controller = new FakeController();
    await controller.start(port);
    const hello = await waitFor('hello after reconnect', () => controller.hellos[0], 15_000);
    expect(hello.instances[0]).toMatchObject({ app: 'shop', activeEdition: '2.0', keptEditions: ['2.0', '1.0'], processState: 'running', quiesced: false });
    expect(await controller.run({ commandId: 'c9', healthCheck: health })).toMatchObject({ ok: true, activeEdition: '2.0' });
  });

  it('stops its app processes when stopped', async () => {
    const pid = Number((await get(gatePort, '/')).headers['x-pid']);
    expect(alive(pid)).toBe(true);
    await agent.stop();
    expect(alive(pid)).toBe(false);
    await expect(get(gatePort, '/')).rejects.toThrow();
  });

  it('brings its app back after an agent restart and still replays finished commands', async () => {
    agent = await runAgent(agentOptions());
    gatePort = agent.servicePorts().shop!;
    expect((await get(gatePort, '/')).body).toBe('2.0');
    await waitFor('hello from the restarted agent', () => controller.hellos[1]);
    const replay = await controller.run({ commandId: 'c6', restartApp: { edition: '2.0', app: spec, updateOrder: '' } });
    expect(replay).toMatchObject({ ok: true, replayed: true });
  });

  it('stops the app on StopApp and starts the active edition on StartApp', async () => {
    expect(await controller.run({ commandId: 'c10', stopApp: {} })).toMatchObject({ ok: true, activeEdition: '2.0' });
    const refused = await get(gatePort, '/');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(await controller.run({ commandId: 'c11', startApp: { edition: '', app: spec } })).toMatchObject({ ok: true, activeEdition: '2.0' });
    expect(await controller.run({ commandId: 'c12', healthCheck: health })).toMatchObject({ ok: true });
    expect((await get(gatePort, '/')).body).toBe('2.0');
  });

  it('backs out to a kept edition with a hard reset, running the reset hook', async () => {
    const before = files.requests();
    const result = await controller.run({ commandId: 'c13', hardResetServer: { edition: '1.0', app: spec } });
    expect(result).toMatchObject({ ok: true, activeEdition: '1.0' });
    expect(readFileSync(`${dir.path}/hook-ran`, 'utf8').trim()).toBe('shop 1.0');
    expect(await controller.run({ commandId: 'c14', healthCheck: health })).toMatchObject({ ok: true });
    expect((await get(gatePort, '/')).body).toBe('1.0');
    expect(files.requests()).toBe(before);
  });

  it('fails a health check that never passes, and a command past its deadline', async () => {
    const failed = await controller.run({ commandId: 'c15', healthCheck: { ...health, path: '/missing', expectedStatus: 204, retries: 2, intervalMs: 10 } });
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/unhealthy after 3 tries: GET \/missing answered 200, expected 204/);
    // A controller older than timeout_ms sends only its wall-clock deadline.
    const late = await controller.run({ commandId: 'c16', timeoutMs: 0, deadlineUnixMs: Date.now() - 1, healthCheck: health });
    expect(late).toMatchObject({ ok: false, error: 'deadline passed before the command could start' });
    const unknown = await controller.run({ commandId: 'c17', app: 'billing', stopApp: {} });
    expect(unknown.error).toMatch(/not served by this agent/);
  });
});
