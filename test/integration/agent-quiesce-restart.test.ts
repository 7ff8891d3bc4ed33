// An agent killed (SIGKILL) between Quiesce and HealthCheck comes back with its gate quiesced: the controller counts
// that instance drained, so the load balancer must keep seeing 503 on health until the next successful HealthCheck.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, FakeController, get, serveFiles, tempDir, type BuiltPackage } from '../../agent/test-support.js';
import type { AppSpec } from '../../proto/gen/fleetwave/v1/agent.js';
import { freePort, startAgent, waitFor, type AgentProc } from '../harness/fleet.js';

const spec: AppSpec = { name: 'shop', startCommand: [process.execPath, 'server.js'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 5000, drainMode: '', quiesceHook: '', inflightPath: '', updateOrder: '', startGraceMs: 0, healthInitialIntervalMs: 0, holdMs: 0 };
const health = { path: '/healthz', expectedStatus: 200, retries: 40, intervalMs: 50, timeoutMs: 1000 };

describe('an agent restarted between Quiesce and HealthCheck', () => {
  const dir = tempDir('quiesce-restart');
  const controller = new FakeController();
  let files: Awaited<ReturnType<typeof serveFiles>>;
  let pkg: BuiltPackage;
  let agent: AgentProc | undefined;
  let port = 0;

  const start = async () => {
    agent = await startAgent({
      id: 'q1',
      group: 'blue',
      controller: `127.0.0.1:${controller.port}`,
      natsUrl: '',
      dataDir: join(dir.path, 'agent'),
      instances: { shop: port },
      logFile: join(dir.path, 'agent.log'),
    });
  };

  beforeAll(async () => {
    pkg = await buildPackage(dir.path, 'shop-1.0');
    files = await serveFiles(dir.path);
    await controller.start();
    port = await freePort();
    await start();
  });

  afterAll(async () => {
    await agent?.stop();
    controller.stop();
    await files?.close();
    dir.remove();
  });

  it('keeps answering 503 on health until the next HealthCheck passes', async () => {
    // Given an instance serving 1.0
    await waitFor('hello', () => controller.hellos[0], 20_000);
    const download = { edition: '1.0', url: `${files.url}/shop-1.0.tar.gz`, sha256: pkg.sha256, size: pkg.size, format: 'tar.gz', fileName: '', keepEditions: 3 };
    expect(await controller.run({ commandId: 'd1', downloadPackage: download })).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 's1', startApp: { edition: '1.0', app: spec } })).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 'h1', healthCheck: health })).toMatchObject({ ok: true });
    expect((await get(port, '/healthz')).status).toBe(200);

    // When it is quiesced and its agent is killed and started again
    expect(await controller.run({ commandId: 'q1', quiesce: { drainMs: 100 } })).toMatchObject({ ok: true });
    expect((await get(port, '/healthz')).status).toBe(503);
    await agent!.kill();
    await start();

    // Then the agent says it is quiesced, and its gate answers health with 503 and holds requests
    const hello = await waitFor('hello after the restart', () => controller.hellos[1], 20_000);
    expect(hello.instances[0]).toMatchObject({ app: 'shop', activeEdition: '1.0', quiesced: true });
    expect((await waitFor('the gate to listen again', () => get(port, '/healthz').catch(() => undefined), 20_000)).status).toBe(503);
    let answered = false;
    const held = get(port, '/').finally(() => (answered = true));
    expect(answered).toBe(false);

    // And once a HealthCheck passes, it serves again (the held request included)
    expect(await controller.run({ commandId: 'h2', healthCheck: health })).toMatchObject({ ok: true });
    expect((await get(port, '/healthz')).status).toBe(200);
    expect(await held).toMatchObject({ status: 200, body: '1.0' });
  }, 60_000);
});
