// The data path survives the agent: under continuous load, an agent restart (SIGTERM, start) and an agent SIGKILLed
// mid-restart refuse no connection on the service port; the app keeps running (same pid) and no edition starts twice.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCommandJournal } from '../../agent/command-journal.js';
import { readGateStats } from '../../agent/data-path.js';
import { buildPackage, FakeController, get, serveFiles, tempDir, type BuiltPackage } from '../../agent/test-support.js';
import type { AppSpec } from '../../proto/gen/fleetwave/v1/agent.js';
import { freePort, startAgent, waitFor, type AgentProc } from '../harness/fleet.js';
import { serviceLoad } from '../harness/service-load.js';

/** Records each start in START_LOG; on SIGTERM it keeps serving SLOW_STOP_MS before it closes (a slow shutdown). */
const APP = `
const http = require('node:http');
const fs = require('node:fs');
const edition = process.env.FLEETWAVE_EDITION;
fs.appendFileSync(process.env.START_LOG, edition + ' ' + process.pid + '\\n');
const server = http.createServer((req, res) => {
  res.setHeader('x-pid', String(process.pid));
  if (req.url === '/healthz') return res.end('ok');
  res.end(edition);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => setTimeout(() => server.close(() => process.exit(0)), Number(process.env.SLOW_STOP_MS)));
`;

const health = { path: '/healthz', expectedStatus: 200, retries: 100, intervalMs: 50, timeoutMs: 1000 };

describe('the data path survives the agent', () => {
  const dir = tempDir('data-path');
  const controller = new FakeController();
  const startLog = join(dir.path, 'starts.log');
  let files: Awaited<ReturnType<typeof serveFiles>>;
  let v1: BuiltPackage;
  let v2: BuiltPackage;
  let agent: AgentProc | undefined;
  let port = 0;
  const spec: AppSpec = {
    name: 'shop', startCommand: [process.execPath, 'server.js'], env: { START_LOG: startLog, SLOW_STOP_MS: '1500' }, portEnv: 'PORT', healthPath: '/healthz',
    stopTimeoutMs: 5000, drainMode: '', quiesceHook: '', inflightPath: '', updateOrder: 'stop-first',
    // Long enough that nothing held here is answered 503: the test counts refusals and failures, not the hold limit.
    holdMs: 30_000,
    startGraceMs: 0,
    healthInitialIntervalMs: 0,
  };
  const dataDir = () => join(dir.path, 'agent');
  const start = async () => {
    agent = await startAgent({ id: 'd1', group: 'blue', controller: `127.0.0.1:${controller.port}`, natsUrl: '', dataDir: dataDir(), instances: { shop: port }, logFile: join(dir.path, 'agent.log') });
  };
  const starts = () => readFileSync(startLog, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
  const pidOf = async () => Number((await get(port, '/')).headers['x-pid']);

  beforeAll(async () => {
    v1 = await buildPackage(dir.path, 'shop-1.0', { 'server.js': APP });
    v2 = await buildPackage(dir.path, 'shop-2.0', { 'server.js': APP });
    files = await serveFiles(dir.path);
    await controller.start();
    port = await freePort();
    await start();
    await waitFor('hello', () => controller.hellos[0], 20_000);
    const download = (id: string, edition: string, pkg: BuiltPackage) =>
      controller.run({ commandId: id, downloadPackage: { edition, url: `${files.url}/shop-${edition}.tar.gz`, sha256: pkg.sha256, size: pkg.size, format: 'tar.gz', fileName: '', keepEditions: 3 } });
    expect(await download('d1', '1.0', v1)).toMatchObject({ ok: true });
    expect(await download('d2', '2.0', v2)).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 's1', startApp: { edition: '1.0', app: spec } })).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 'h1', healthCheck: health })).toMatchObject({ ok: true });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    controller.stop();
    await files?.close();
    if (!process.env.KEEP_TEST_DIR) dir.remove();
  });

  it('keeps serving through an agent restart (SIGTERM, start) and re-adopts the running app', async () => {
    // Given the app serving 1.0 under continuous load
    const pid = await pidOf();
    const traffic = serviceLoad(port);
    await waitFor('some traffic', () => traffic.counts.ok > 20);

    // When the agent stops (SIGTERM) and starts again
    await agent!.restartStop();
    const during = traffic.counts.ok;
    await waitFor('requests served with no agent running', () => traffic.counts.ok > during + 20);
    await start();

    // Then it reports the same process running, and no request was refused or failed meanwhile
    const hello = await waitFor('hello after the restart', () => controller.hellos[1], 20_000);
    expect(hello.instances[0]).toMatchObject({ app: 'shop', servicePort: port, activeEdition: '1.0', processState: 'running', quiesced: false });
    const after = traffic.counts.ok;
    await waitFor('traffic after the restart', () => traffic.counts.ok > after + 20);
    const counts = await traffic.stop();
    expect(await pidOf()).toBe(pid);
    expect({ refused: counts.refused, failed: counts.failed }).toEqual({ refused: 0, failed: [] });
    expect(starts()).toEqual(['1.0']);
  }, 60_000);

  it('refuses no connection when the agent is killed mid-restart, and never starts the old edition again', async () => {
    // Given the app serving 1.0 under load, quiesced for a restart onto 2.0
    const traffic = serviceLoad(port);
    await waitFor('some traffic', () => traffic.counts.ok > 20);
    expect(await controller.run({ commandId: 'q1', quiesce: { drainMs: 1000 } })).toMatchObject({ ok: true });

    // When the restart begins (the old process takes 1.5 s to stop) and the agent is killed in it, then started again
    const hellos = controller.hellos.length;
    controller.send({ commandId: 'r1', restartApp: { edition: '2.0', app: spec, updateOrder: 'stop-first' } });
    await waitFor('the restart to be journalled', () => {
      const journal = readCommandJournal(dataDir());
      return journal.r1 !== undefined && journal.r1.result === undefined;
    });
    await agent!.kill();
    await start();
    await waitFor('hello after the kill', () => controller.hellos.length > hellos, 20_000);

    // Then the re-sent restart finds 2.0 (restored, not 1.0), the health check opens the gate, and traffic reaches 2.0
    expect(await controller.run({ commandId: 'r1', restartApp: { edition: '2.0', app: spec, updateOrder: 'stop-first' } })).toMatchObject({ ok: true, activeEdition: '2.0' });
    expect(await controller.run({ commandId: 'h2', healthCheck: health })).toMatchObject({ ok: true, activeEdition: '2.0' });
    await waitFor('traffic on 2.0', () => traffic.counts.bodies.has('2.0'));
    const counts = await traffic.stop();
    expect({ refused: counts.refused, failed: counts.failed }).toEqual({ refused: 0, failed: [] });
    // 1.0 started once (before these tests), 2.0 once: no old-edition start, no second start of the new one
    expect(starts()).toEqual(['1.0', '2.0']);
    // The gate host held the requests of the whole switch (agent death included) and gave none up
    const figures = (await readGateStats(dataDir())).shop!;
    console.log(`kill -9 mid-restart: ${counts.ok} ok, ${counts.refused} refused; held ${figures.held} (p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, max ${figures.maxMs} ms), ${figures.gaveUp} answered 503 after holding`);
    expect(figures.held).toBeGreaterThan(0);
    expect(figures.gaveUp).toBe(0);
  }, 90_000);

  it('keeps the old edition serving when the agent is killed in a start-first restart, and the re-sent restart switches', async () => {
    // Given 2.0 serving under load
    const traffic = serviceLoad(port);
    await waitFor('some traffic', () => traffic.counts.ok > 20);
    const startsBefore = starts().length;

    // When a start-first restart onto 1.0 has its new process running beside the old one, and the agent is killed then
    const hellos = controller.hellos.length;
    controller.send({ commandId: 'r2', restartApp: { edition: '1.0', app: { ...spec, updateOrder: 'start-first' }, updateOrder: 'start-first' } });
    await waitFor('the second process to be recorded', () => {
      const apps = JSON.parse(readFileSync(join(dataDir(), 'apps.json'), 'utf8')) as Record<string, { spares?: unknown[] }>;
      return (apps.shop?.spares?.length ?? 0) > 0;
    });
    await agent!.kill();
    await start();
    await waitFor('hello after the kill', () => controller.hellos.length > hellos, 20_000);

    // Then 2.0 kept serving, the re-sent restart switches to 1.0, and nothing was refused or failed
    expect(await controller.run({ commandId: 'r2', restartApp: { edition: '1.0', app: { ...spec, updateOrder: 'start-first' }, updateOrder: 'start-first' } })).toMatchObject({ ok: true, activeEdition: '1.0' });
    await waitFor('traffic on 1.0', async () => (await get(port, '/')).body === '1.0');
    const counts = await traffic.stop();
    expect({ refused: counts.refused, failed: counts.failed }).toEqual({ refused: 0, failed: [] });
    // The killed agent's new process and the re-sent restart's: 1.0 twice, 2.0 never again
    expect(starts().slice(startsBefore)).toEqual(['1.0', '1.0']);
  }, 90_000);
});
