// An agent upgrade keeps the data path: the new agent speaks another gate protocol (FLEETWAVE_GATE_PROTOCOL_SUFFIX
// plays the old version), so the running gate host hands its sockets over to one of the new version. Under load on
// fresh and keep-alive connections no connection is refused and no request fails; the app keeps running.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GateLink } from '../../agent/gate-link.js';
import { GATE_PROTOCOL, gateSocketPath, type GateReply } from '../../agent/gate-protocol.js';
import { alive, buildPackage, FakeController, get, serveFiles, tempDir, type BuiltPackage } from '../../agent/test-support.js';
import type { AppSpec } from '../../proto/gen/fleetwave/v1/agent.js';
import { freePort, startAgent, waitFor, type AgentProc } from '../harness/fleet.js';
import { serviceLoad } from '../harness/service-load.js';

const health = { path: '/healthz', expectedStatus: 200, retries: 100, intervalMs: 50, timeoutMs: 1000 };
const OLD_VERSION = { FLEETWAVE_GATE_PROTOCOL_SUFFIX: '+previous' };
const NEW_VERSION = { FLEETWAVE_GATE_PROTOCOL_SUFFIX: undefined };

/** The data dir's gate host as it answers hello (pid, protocol, gates). */
async function gateHost(dataDir: string): Promise<GateReply> {
  const link = await GateLink.connect(gateSocketPath(dataDir));
  if (!link) throw new Error('no gate host answers');
  try {
    return await link.request({ op: 'hello' });
  } finally {
    link.close();
  }
}

describe('an agent upgrade', () => {
  const dir = tempDir('agent-upgrade');
  const controller = new FakeController();
  const dataDir = join(dir.path, 'agent');
  const logFile = join(dir.path, 'agent.log');
  let files: Awaited<ReturnType<typeof serveFiles>>;
  let v1: BuiltPackage;
  let agent: AgentProc | undefined;
  let port = 0;
  const spec: AppSpec = {
    name: 'shop', startCommand: [process.execPath, 'server.js'], env: {}, portEnv: 'PORT', healthPath: '/healthz',
    stopTimeoutMs: 5000, drainMode: '', quiesceHook: '', inflightPath: '', updateOrder: 'stop-first',
    holdMs: 30_000, startGraceMs: 0, healthInitialIntervalMs: 0,
  };
  const start = async (env: NodeJS.ProcessEnv) => {
    agent = await startAgent({ id: 'u1', group: 'blue', controller: `127.0.0.1:${controller.port}`, natsUrl: '', dataDir, instances: { shop: port }, logFile, env });
  };

  beforeAll(async () => {
    v1 = await buildPackage(dir.path, 'shop-1.0');
    files = await serveFiles(dir.path);
    await controller.start();
    port = await freePort();
    await start(OLD_VERSION);
    await waitFor('hello', () => controller.hellos[0], 20_000);
    const downloadPackage = { edition: '1.0', url: `${files.url}/shop-1.0.tar.gz`, sha256: v1.sha256, size: v1.size, format: 'tar.gz', fileName: '', keepEditions: 3 };
    expect(await controller.run({ commandId: 'd1', downloadPackage })).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 's1', startApp: { edition: '1.0', app: spec } })).toMatchObject({ ok: true });
    expect(await controller.run({ commandId: 'h1', healthCheck: health })).toMatchObject({ ok: true });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    controller.stop();
    await files?.close();
    if (!process.env.KEEP_TEST_DIR) dir.remove();
  });

  it('hands the gate host over: no connection refused, no request failed, the old gate host exits', async () => {
    // Given the app serving under load on fresh and keep-alive connections, behind a gate host of the old version
    const old = await gateHost(dataDir);
    expect(old.protocol).toBe(`${GATE_PROTOCOL}+previous`);
    const appPid = Number((await get(port, '/')).headers['x-pid']);
    const fresh = serviceLoad(port);
    const kept = serviceLoad(port, { keepAlive: true });
    const served = () => fresh.counts.ok + kept.counts.ok;
    await waitFor('some traffic', () => fresh.counts.ok > 20 && kept.counts.ok > 20);

    // When the agent stops and one of the new version starts on the same data dir
    await agent!.restartStop();
    await start(NEW_VERSION);
    const hello = await waitFor('hello after the upgrade', () => controller.hellos[1], 20_000);

    // Then a gate host of the new version serves the gates, the old one exited, and the app kept running
    const now = await gateHost(dataDir);
    expect(now).toMatchObject({ protocol: GATE_PROTOCOL, gates: [expect.objectContaining({ app: 'shop', port, listening: true, quiesced: false })] });
    expect(now.pid).not.toBe(old.pid);
    await waitFor('the old gate host to exit', () => !alive(old.pid!));
    expect(hello.instances[0]).toMatchObject({ app: 'shop', servicePort: port, activeEdition: '1.0', processState: 'running', quiesced: false });
    expect(Number((await get(port, '/')).headers['x-pid'])).toBe(appPid);
    expect(readFileSync(logFile, 'utf8')).toContain('gate host handed its sockets over');

    // And under load nothing was refused or failed, before, during and after
    const after = served();
    await waitFor('traffic after the upgrade', () => served() > after + 50);
    const counts = [await fresh.stop(), await kept.stop()];
    console.log(`agent upgrade: ${counts[0]!.ok} ok on fresh connections, ${counts[1]!.ok} on keep-alive ones; gate host ${old.pid} → ${now.pid}`);
    expect(counts.map((c) => ({ refused: c.refused, failed: c.failed }))).toEqual([{ refused: 0, failed: [] }, { refused: 0, failed: [] }]);
  }, 90_000);
});
