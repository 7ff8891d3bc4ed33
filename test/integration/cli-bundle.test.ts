// The `fleetwave` CLI as one file (the controller package's): the controller starts from it with better-sqlite3 from
// the node_modules/ beside it, the admin verbs and the agent run from it, and the router finds its Lua script beside it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GateLink } from '../../agent/gate-link.js';
import { gateSocketPath } from '../../agent/gate-protocol.js';
import { buildCliBundle, packageVersion } from '../../deploy/dist/bundle.js';
import { Admin, freePort, startAgent, startController, startNats, waitFor, type AgentProc, type ControllerProc, type Nats } from '../harness/fleet.js';
import { spawnProc, type Proc } from '../harness/proc.js';
import { HAPROXY_BIN, HAS_HAPROXY, killHaproxy } from '../harness/router.js';

describe('the CLI bundle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-clibundle-'));
  const cliFile = join(dir, 'pkg', 'fleetwave.cjs');
  const routerDir = join(dir, 'router');
  let nats: Nats | undefined;
  let controller: ControllerProc | undefined;
  let agent: AgentProc | undefined;
  let router: Proc | undefined;

  const cli = (args: string[]) => spawnSync(process.execPath, [cliFile, ...args], { encoding: 'utf8', timeout: 20_000 });

  beforeAll(async () => {
    await buildCliBundle({ outDir: join(dir, 'pkg') });
    nats = await startNats(join(dir, 'nats'));
  }, 60_000);

  afterAll(async () => {
    await router?.stop();
    await killHaproxy(routerDir);
    await agent?.stop();
    await controller?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports the package version', () => {
    expect(cli(['--version']).stdout.trim()).toBe(packageVersion());
  });

  it('runs the controller on the better-sqlite3 beside it, and the admin verbs against it', async () => {
    controller = await startController({ dataDir: join(dir, 'controller'), natsUrl: nats!.url, program: [process.execPath, cliFile, 'controller'] });
    const maps = readFileSync(`/proc/${controller.pid}/maps`, 'utf8');
    expect(maps).toContain(join(dir, 'pkg', 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
    expect(cli(['--controller', controller.grpcAddress, 'app', 'create', 'shop', '--start', 'node server.js']).status).toBe(0);
    expect(cli(['--controller', controller.grpcAddress, 'app', 'list']).stdout).toContain('shop');
    // The web console it serves is the one beside the bundle (console/), not a dist/ that a package would not have.
    const page = await fetch(`${controller.httpUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe(readFileSync(join(dir, 'pkg', 'console', 'index.html'), 'utf8'));
    expect((await fetch(`${controller.httpUrl}/assets/console.js`)).status).toBe(200);
  }, 60_000);

  it('runs the agent, whose gate host is the bundle in its hidden mode', async () => {
    agent = await startAgent({
      id: 'c1', group: 'cli', controller: controller!.grpcAddress, natsUrl: nats!.url, dataDir: join(dir, 'agent'),
      instances: { shop: await freePort() }, program: [process.execPath, cliFile, 'agent'],
    });
    const admin = new Admin(controller!.grpcAddress);
    try {
      await admin.waitForAgents(['c1']);
    } finally {
      admin.close();
    }
    const link = (await GateLink.connect(gateSocketPath(agent.dataDir)))!;
    const pid = (await link.request({ op: 'hello' })).pid!;
    link.close();
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual([process.execPath, cliFile, '__gate-host', agent.dataDir]);
  }, 60_000);

  it.skipIf(!HAS_HAPROXY)('runs the router, which starts haproxy with the Lua script from beside the bundle', async () => {
    const port = await freePort();
    router = spawnProc('router', process.execPath, [
      cliFile, 'router', '--insecure', '--controller', controller!.grpcAddress, '--nats', '',
      '--app', `shop=127.0.0.1:${port}`, '--haproxy-bin', HAPROXY_BIN, '--run-dir', routerDir,
    ]);
    await waitFor('haproxy started by the bundled router', () => {
      if (!router!.running) throw new Error(`router exited: ${router!.tail()}`);
      return existsSync(join(routerDir, 'haproxy.pid'));
    }, 30_000);
    expect(readFileSync(join(routerDir, 'fleetwave.lua'), 'utf8')).toBe(readFileSync(join(dir, 'pkg', 'fleetwave.lua'), 'utf8'));
  }, 60_000);
});
