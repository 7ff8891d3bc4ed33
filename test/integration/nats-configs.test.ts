// deploy/nats/: the NATS configurations fleetwave ships, run by a real nats-server with only their paths and ports
// moved into a scratch dir: one server (JetStream on, TLS, users; the controller connects and creates its stream)
// and a three-node cluster (clustered JetStream takes a three-replica stream).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/ports.js';
import { initCaDir } from '../../common/tls.js';
import { repoPath, startController, waitFor, type ControllerProc, type Proc } from '../harness/fleet.js';
import { canConnect, HAS_NATS_SERVER } from '../harness/nats.js';
import { spawnProc } from '../harness/proc.js';

const PASSWORDS = {
  FLEETWAVE_NATS_CONTROLLER_PASS: 'controller-secret',
  FLEETWAVE_NATS_DASHBOARD_PASS: 'dashboard-secret',
  FLEETWAVE_NATS_ROUTER_PASS: 'router-secret',
  FLEETWAVE_NATS_AGENTS_PASS: 'agents-secret',
  FLEETWAVE_NATS_ROUTE_PASS: 'route-secret',
};

let dir: string;
let caFile: string;
const procs: Proc[] = [];
const clients: NatsConnection[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-nats-conf-'));
  // The server certificate: what `fleetwave ca init` makes for the controller (127.0.0.1 is among its names).
  const ca = initCaDir(join(dir, 'ca'));
  mkdirSync(join(dir, 'tls'));
  copyFileSync(ca.serverCert, join(dir, 'tls/server.crt'));
  copyFileSync(ca.serverKey, join(dir, 'tls/server.key'));
  caFile = ca.caCert;
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** The shipped config `name` and its users file, in `nodeDir`, with store, TLS paths and ports moved there. */
function materialize(name: 'single.conf' | 'cluster.conf', nodeDir: string, ports: { client: number; http: number; cluster?: number }): string {
  mkdirSync(nodeDir, { recursive: true });
  const move = (text: string) =>
    text
      .replaceAll('/var/lib/nats', join(nodeDir, 'jetstream'))
      .replaceAll('/etc/nats/tls/', join(dir, 'tls') + '/')
      .replaceAll('0.0.0.0:4222', `127.0.0.1:${ports.client}`)
      .replaceAll('127.0.0.1:8222', `127.0.0.1:${ports.http}`)
      .replaceAll('0.0.0.0:6222', `127.0.0.1:${ports.cluster ?? 0}`);
  const config = join(nodeDir, 'nats-server.conf');
  writeFileSync(config, move(readFileSync(repoPath('deploy/nats', name), 'utf8')));
  writeFileSync(join(nodeDir, 'fleetwave-users.conf'), readFileSync(repoPath('deploy/nats/fleetwave-users.conf'), 'utf8'));
  return config;
}

function checkConfig(config: string, env: Record<string, string>): { status: number | null; output: string } {
  const result = spawnSync('nats-server', ['-t', '-c', config], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

async function startServer(name: string, config: string, port: number, env: Record<string, string>): Promise<Proc> {
  const proc = spawnProc(name, 'nats-server', ['-c', config], undefined, env);
  procs.push(proc);
  await waitFor(`${name} on port ${port}`, async () => {
    if (!proc.running) throw new Error(`${name} exited: ${proc.tail()}`);
    return (await canConnect(port)) || undefined;
  });
  return proc;
}

async function client(port: number, user = 'controller', pass = PASSWORDS.FLEETWAVE_NATS_CONTROLLER_PASS): Promise<NatsConnection> {
  const nc = await connect({ servers: `nats://127.0.0.1:${port}`, user, pass, tls: { caFile }, timeout: 5_000 });
  clients.push(nc);
  return nc;
}

describe.skipIf(!HAS_NATS_SERVER)('deploy/nats/single.conf', () => {
  let port: number;
  let controller: ControllerProc | undefined;
  afterAll(async () => controller?.stop());

  it('is valid, and refused without its passwords in the environment', async () => {
    port = await freePort();
    const config = materialize('single.conf', join(dir, 'single'), { client: port, http: await freePort() });
    expect(checkConfig(config, PASSWORDS)).toMatchObject({ status: 0 });
    const missing = checkConfig(config, {});
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('FLEETWAVE_NATS_CONTROLLER_PASS');
    await startServer('nats single', config, port, PASSWORDS);
  });

  it('serves JetStream over TLS to the controller user, and nobody without a password', async () => {
    const nc = await client(port);
    const info = await (await nc.jetstreamManager()).getAccountInfo();
    expect(info.limits.max_storage).not.toBe(0);
    await expect(connect({ servers: `nats://127.0.0.1:${port}`, tls: { caFile }, timeout: 5_000, reconnect: false })).rejects.toThrow(/[Aa]uthorization/);
    await expect(connect({ servers: `nats://127.0.0.1:${port}`, user: 'controller', pass: 'controller-secret', timeout: 5_000, reconnect: false })).rejects.toThrow();
    // The shared agents user gets in (agents' events are signed and checked by the controller).
    const agents = await client(port, 'agents', PASSWORDS.FLEETWAVE_NATS_AGENTS_PASS);
    await agents.flush();
    await agents.close();
  });

  it('takes a secure controller (NATS user controller) that creates its event stream', async () => {
    controller = await startController({
      dataDir: join(dir, 'controller'),
      natsUrl: `nats://127.0.0.1:${port}`,
      logFile: join(dir, 'controller.log'),
      args: ['--nats-user', 'controller'],
      env: { FLEETWAVE_NATS_PASS: PASSWORDS.FLEETWAVE_NATS_CONTROLLER_PASS, NODE_EXTRA_CA_CERTS: caFile },
    });
    const jsm = await (await client(port)).jetstreamManager();
    const stream = await waitFor('the controller to create FLEETWAVE_EVENTS', () => jsm.streams.info('FLEETWAVE_EVENTS').catch(() => undefined), 30_000);
    expect(stream.config.subjects).toEqual(['fleetwave.events.>']);
  });
});

describe.skipIf(!HAS_NATS_SERVER)('deploy/nats/cluster.conf', () => {
  it('three nodes form a cluster whose JetStream takes a stream with three replicas', async () => {
    const nodes = [];
    for (let i = 1; i <= 3; i++) nodes.push({ name: `nats-${i}`, client: await freePort(), http: await freePort(), cluster: await freePort() });
    const routes = Object.fromEntries(nodes.map((n, i) => [`FLEETWAVE_NATS_ROUTE_${i + 1}`, `nats-route://route:${PASSWORDS.FLEETWAVE_NATS_ROUTE_PASS}@127.0.0.1:${n.cluster}`]));
    const started = nodes.map((n) => {
      const config = materialize('cluster.conf', join(dir, n.name), n);
      const env = { ...PASSWORDS, ...routes, FLEETWAVE_NATS_NAME: n.name };
      expect(checkConfig(config, env), n.name).toMatchObject({ status: 0 });
      return startServer(n.name, config, n.client, env);
    });
    await Promise.all(started);
    const nc = await client(nodes[0]!.client);
    // Succeeds only once the routes are up and the three nodes have elected a JetStream meta leader.
    const stream = await waitFor('a stream with 3 replicas', async () => {
      const jsm = await nc.jetstreamManager({ timeout: 2_000 });
      return jsm.streams.add({ name: 'R3CHECK', subjects: ['r3check.>'], num_replicas: 3 });
    }, 60_000);
    expect(stream.config.num_replicas).toBe(3);
    expect(stream.cluster?.replicas?.length).toBe(2);
  });
});
