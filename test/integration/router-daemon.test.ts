// `fleetwave router` as a process, between a stand-in controller (WatchRouting/AckRouting over real gRPC), a real
// nats-server and a real haproxy: it acks what it applied, drains on quiesce.started, keeps haproxy as it is while the
// controller is away, and a restarted router re-attaches to the same haproxy and repairs it.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSource, instanceEvent } from '../../common/events.js';
import { RUN_FILES } from '../../router/haproxy-process.js';
import { RuntimeApi, parseMapEntries } from '../../router/runtime.js';
import { appRouting, routed } from '../../router/test-fixtures.js';
import { runCli } from '../harness/fleet.js';
import { HAS_NATS_SERVER, startNats, type Nats } from '../harness/nats.js';
import { RoutingController } from '../harness/routing-controller.js';
import { alive, editionsOf, freePort, HAS_HAPROXY, serverStates, startBackend, startRouter, stopRouter, type Backend, type RouterProc } from '../harness/router.js';
import { waitFor } from '../harness/wait.js';

const TOKEN = 'router-secret';

describe.skipIf(!HAS_HAPROXY || !HAS_NATS_SERVER)('fleetwave router (process)', () => {
  let dir: string;
  let runDir: string;
  let nats: Nats;
  let nc: NatsConnection;
  let controller: RoutingController;
  let router: RouterProc;
  let port: number;
  let api: RuntimeApi;
  const backends: Record<string, Backend> = {};
  let logN = 0;

  const instance = (name: string, fields: Parameters<typeof routed>[2] = {}) => routed(name, backends[name]!.edition, { address: '127.0.0.1', port: backends[name]!.port, ...fields });
  const shop = (fields: Parameters<typeof appRouting>[1] = {}) => ({ apps: [appRouting(['a1', 'a2', 'b1'].map((n) => instance(n)), fields)], instances: [] });
  const haproxyPid = () => Number(readFileSync(join(runDir, RUN_FILES.pid), 'utf8').trim());
  const start = () => startRouter({ runDir, apps: { shop: port }, controller: controller.address, natsUrl: nats.url, id: 'r1', token: TOKEN, logFile: join(dir, `router-${++logN}.log`) });
  const stateOf = async (server: string, backend: string) => (await serverStates(api, 'shop')).find((r) => r.server === server && r.backend === backend)?.admin;
  const slotOf = async (edition: string) => parseMapEntries(await api.one(`show map ${join(runDir, 'fw_shop.map')}`)).get(edition)!;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fw-rd-'));
    runDir = join(dir, 'run');
    nats = await startNats(join(dir, 'nats'));
    nc = await connect({ servers: nats.url });
    for (const [name, edition] of [['a1', '1.0'], ['a2', '1.0'], ['b1', '2.0']] as const) backends[name] = await startBackend(name, edition);
    port = await freePort();
    controller = new RoutingController(shop(), TOKEN);
    await controller.start();
    router = await start();
    api = new RuntimeApi(router.socket);
  });

  afterAll(async () => {
    controller?.kill();
    await stopRouter(router, runDir);
    await nc?.close();
    await nats?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('watches with its id, apps and token, applies the full update and acks it', async () => {
    await waitFor('the full update acked', () => controller.acked('r1', 1));
    expect(controller.watches[0]).toEqual({ apps: ['shop'], routerId: 'r1' });
    expect(controller.tokens[0]).toBe(`Bearer ${TOKEN}`);
    expect(await editionsOf(port, 20)).toEqual({ '1.0': 20 });
  });

  it('applies deltas and acks each version once it is in haproxy', async () => {
    const version = controller.push(shop({ routes: [] , defaultEditions: ['2.0'] }));
    await waitFor(`version ${version} acked`, () => controller.acked('r1', version));
    expect(await editionsOf(port, 20)).toEqual({ '2.0': 20 });
    const back = controller.push(shop(), shop());
    await waitFor(`version ${back} acked`, () => controller.acked('r1', back));
    expect(await editionsOf(port, 20)).toEqual({ '1.0': 20 });
  });

  it('drains an instance on quiesce.started from NATS and readies it on healthy', async () => {
    const slot = await slotOf('1.0');
    const publish = (reason: 'quiesce.started' | 'healthy') => {
      const { subject, event } = instanceEvent(agentSource('a1'), 'shop', 'a1', reason, { edition: '1.0' });
      nc.publish(subject, JSON.stringify(event));
    };
    publish('quiesce.started');
    await waitFor('a1 drained', async () => (await stateOf('a1', slot)) === 'drain');
    expect(await stateOf('a2', slot)).toBe('ready');
    publish('healthy');
    await waitFor('a1 ready again', async () => (await stateOf('a1', slot)) === 'ready');
  });

  it('keeps haproxy serving while the controller is away, and resyncs when it is back', async () => {
    const port0 = controller.port;
    controller.kill();
    expect(await editionsOf(port, 20)).toEqual({ '1.0': 20 });
    // The controller comes back (a restart: versions count from 1 again) with a new default edition.
    controller = new RoutingController(shop({ defaultEditions: ['2.0'] }), TOKEN);
    await controller.start(port0);
    await waitFor('the router watching again and acking', () => controller.acked('r1', 1), 30_000);
    expect(await editionsOf(port, 20)).toEqual({ '2.0': 20 });
  });

  it('re-attaches after a restart without restarting haproxy, and repairs what changed behind its back', async () => {
    const pid = haproxyPid();
    await router.stop();
    expect(router.proc.child.exitCode).toBe(0);
    expect(alive(pid)).toBe(true);
    // While no router runs: haproxy still serves, and someone forces 2.0's servers into maint.
    expect(await editionsOf(port, 10)).toEqual({ '2.0': 10 });
    const slot = await slotOf('2.0');
    await api.run([`set server ${slot}/b1 state maint`]);
    const acksBefore = controller.acks.length;
    router = await start();
    expect(readFileSync(join(dir, `router-${logN}.log`), 'utf8')).toContain('attached to the running haproxy');
    expect(haproxyPid()).toBe(pid);
    await waitFor('the new router acked', () => controller.acks.length > acksBefore);
    expect(await stateOf('b1', slot)).toBe('ready');
    expect(await editionsOf(port, 20)).toEqual({ '2.0': 20 });
  });
});

describe.skipIf(!HAS_HAPROXY)('fleetwave router: bad input', () => {
  const expectOneLine = (r: { code: number; stderr: string }, pattern: RegExp) => {
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(r.code, r.stderr).toBe(2);
  };

  it('refuses a malformed --app in one line, exit 2', async () => {
    expectOneLine(await runCli(['router', '--app', 'shop', '--haproxy-socket', '/tmp/x.sock', '--insecure'], '127.0.0.1:1'), /^fleetwave router: --app: 'shop' is not NAME=\[HOST\]:PORT$/);
  });

  it('refuses a socket that is not there when it may not start haproxy, and starts nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fw-rb-'));
    try {
      const socket = join(dir, 'nothing.sock');
      const r = await runCli(['router', '--app', 'shop=:18099', '--haproxy-socket', socket, '--run-dir', join(dir, 'run'), '--insecure', '--nats', ''], '127.0.0.1:1');
      expectOneLine(r, new RegExp(`^fleetwave router: no haproxy admin socket at ${socket} .*give --haproxy-bin`));
      expect(existsSync(join(dir, 'run'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
