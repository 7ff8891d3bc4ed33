// Controller-issued NATS keys (--nats-agent-users) against a real nats-server that includes the controller's users
// file: an enrolled agent publishes its events with the nkey it got at enrolment, and `agent revoke` takes its NATS
// user away at once: its open connection is closed and its key is refused from then on.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, nkeyAuthenticator } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATS_SEED_FILE } from '../../agent/credentials.js';
import { AdminClient } from '../../cli/client.js';
import { channelCredentials, initCaDir } from '../../common/tls.js';
import { buildEdition } from '../../examples/demo/package.js';
import { freePort, repoPath, runCli, startAgent, startController, startNats, waitFor, type AgentProc, type ControllerProc, type Nats } from '../harness/fleet.js';
import { readSse } from './forged-support.js';

const PASS = 'pw';

/** nats-server's open connections, with the user (nkey) each authenticated as (its monitoring endpoint). */
async function connections(monitorPort: number): Promise<Array<{ name?: string; authorized_user?: string }>> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/connz?auth=true`);
  return ((await res.json()) as { connections?: Array<{ name?: string; authorized_user?: string }> }).connections ?? [];
}

describe('NATS users the controller issues at enrolment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-nats-users-'));
  const caDir = join(dir, 'ca');
  const caFile = join(caDir, 'ca.crt');
  const usersFile = join(dir, 'nats', 'agent-users.conf');
  let monitorPort = 0;
  let nats: Nats;
  let controller: ControllerProc;
  let agent: AgentProc;
  let admin = '';
  let client: AdminClient;
  let sse: ReturnType<typeof readSse>;

  const cli = async (args: string[]) => {
    const res = await runCli(['--ca', caFile, '--token', admin, ...args], controller.grpcAddress);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout.trim();
  };
  const seedOf = (id: string) => readFileSync(join(dir, 'agents', id, NATS_SEED_FILE), 'utf8').trim();
  const connectAs = (seed: string) => connect({ servers: nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)), reconnect: false });

  beforeAll(async () => {
    // Given nats-server whose config includes the users file the controller writes (its own user from the template)
    initCaDir(caDir);
    monitorPort = await freePort();
    const template = join(dir, 'users.template');
    writeFileSync(template, `{ user: controller, password: ${PASS} }\n`);
    // The very first start: the file must exist before nats-server reads it; the controller then rewrites it.
    mkdirSync(join(dir, 'nats'), { recursive: true });
    writeFileSync(usersFile, `authorization { users = [ { user: controller, password: ${PASS} } ] }\n`);
    nats = await startNats(join(dir, 'nats'), join(dir, 'nats.log'), undefined, undefined, `http: "127.0.0.1:${monitorPort}"\ninclude ./agent-users.conf\n`);
    controller = await startController({
      dataDir: join(dir, 'controller'), natsUrl: nats.url, insecure: false, logFile: join(dir, 'controller.log'),
      args: [
        '--tls-dir', caDir, '--bootstrap-token-file', join(dir, 'admin.token'), '--nats-user', 'controller', '--nats-pass', PASS,
        '--nats-agent-users', usersFile, '--nats-users-template', template, '--nats-reload-pid-file', nats.pidFile,
      ],
    });
    admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    client = new AdminClient(controller.grpcAddress, 'test', { credentials: channelCredentials(caFile), token: admin });
    sse = readSse(`${controller.httpUrl}/events`, { ca: readFileSync(caFile), token: admin });
    // And agent a1 enrolled with a join token, given no NATS credential of its own
    const joinToken = await cli(['token', 'create', 'join', '--role', 'agent']);
    const port = await freePort();
    agent = await startAgent({
      id: 'a1', group: 'blue', controller: controller.grpcAddress, natsUrl: nats.url, dataDir: join(dir, 'agents', 'a1'), instances: { shop: port },
      insecure: false, logFile: join(dir, 'agent-a1.log'), args: ['--ca', caFile, '--join-token', joinToken],
    });
    await waitFor('a1 connected', async () => (await client.listAgents()).agents.some((a) => a.id === 'a1' && a.status === 'connected'), 30_000);
  }, 60_000);

  afterAll(async () => {
    sse?.close();
    client?.close();
    await agent?.stop();
    await controller?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets the agent publish with its issued nkey, and revoking it closes its NATS connection and refuses its key', async () => {
    // Then the users file names a1's public key (and not its seed), owner and group only
    const seed = seedOf('a1');
    expect(seed).toMatch(/^SU[A-Z2-7]+$/);
    expect(statSync(join(dir, 'agents', 'a1', NATS_SEED_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(usersFile).mode & 0o777).toBe(0o640);
    const text = readFileSync(usersFile, 'utf8');
    expect(text).toContain('fleetwave.ingest.*.instance.a1');
    expect(text).not.toContain(seed);
    // And a1 is connected to NATS as that key
    const publicKey = text.match(/nkey: (U[A-Z2-7]+)/)![1]!;
    await waitFor('a1 on NATS with its nkey', async () => (await connections(monitorPort)).some((c) => c.authorized_user === publicKey) || undefined, 20_000);
    // And its events reach the controller: released, a1 starts shop and says so
    await cli(['app', 'create', 'shop', '--start', 'node server.mjs']);
    const pkg = await buildEdition({ sourceDir: repoPath('test/integration/fixtures/hold-app'), edition: '1.0', outDir: join(dir, 'packages'), name: 'shop' });
    await cli(['edition', 'install', 'shop', '1.0', '--file', pkg.path]);
    await cli(['release', 'create', 'shop', '--batches', '1', '--edition', '1.0', '--group', 'all']);
    await waitFor("a1's started event on SSE", async () => sse.events().some((e) => e.type === 'io.fleetwave.instance.started' && e.data.instance === 'a1') || undefined, 60_000).catch((err) => {
      throw new Error(`${err}; SSE: ${sse.raw().slice(-1500)}`);
    });

    // When an admin revokes a1
    expect(await cli(['agent', 'revoke', 'a1'])).toMatch(/revoked/);
    // Then nats-server closed a1's connection, and its key cannot connect again
    await waitFor("a1's NATS connection closed", async () => !(await connections(monitorPort)).some((c) => c.authorized_user === publicKey) || undefined, 10_000);
    const refusal = await waitFor('the key refused', async () => {
      try {
        await (await connectAs(seed)).close();
        return undefined;
      } catch (err) {
        return err as Error & { code?: string };
      }
    }, 10_000);
    expect(refusal.code).toBe('AUTHORIZATION_VIOLATION');
    expect(readFileSync(usersFile, 'utf8')).not.toContain(publicKey);
    // And the controller still is (its own user came from the template)
    expect((await connections(monitorPort)).some((c) => c.name?.includes('controller') || c.authorized_user === 'controller')).toBe(true);
  }, 120_000);

  it('re-keying an agent voids its NATS key; re-enrolled with the rekey token it is back on NATS with a new one', async () => {
    // Given agent a2 on NATS with its issued key
    const joinToken = await cli(['token', 'create', 'join2', '--role', 'agent']);
    const start = (token: string) =>
      startAgent({
        id: 'a2', group: 'blue', controller: controller.grpcAddress, natsUrl: nats.url, dataDir: join(dir, 'agents', 'a2'), instances: {},
        insecure: false, logFile: join(dir, 'agent-a2.log'), args: ['--ca', caFile, '--join-token', token],
      });
    let a2 = await start(joinToken);
    try {
      const keyOf = async () => (await waitFor('a2 enrolled', () => readFileSync(usersFile, 'utf8').match(/# agent a2\n\s*\{ nkey: (U[A-Z2-7]+)/)?.[1], 20_000));
      const oldKey = await keyOf();
      await waitFor('a2 on NATS', async () => (await connections(monitorPort)).some((c) => c.authorized_user === oldKey) || undefined, 20_000);
      const oldSeed = seedOf('a2');
      // When an admin re-keys it
      const rekeyToken = (await cli(['agent', 'rekey', 'a2'])).split(/\s+/).pop()!;
      // Then its NATS connection is closed and its old key refused
      await waitFor("a2's old NATS connection closed", async () => !(await connections(monitorPort)).some((c) => c.authorized_user === oldKey) || undefined, 10_000);
      await waitFor('the old key refused', async () => connectAs(oldSeed).then((nc) => void nc.close(), (err: Error & { code?: string }) => err.code === 'AUTHORIZATION_VIOLATION' || undefined), 10_000);
      // And once it enrols again with the rekey token, it is on NATS with a new key
      await a2.stop();
      a2 = await start(rekeyToken);
      const newKey = await waitFor('a new key for a2', async () => {
        const key = readFileSync(usersFile, 'utf8').match(/# agent a2\n\s*\{ nkey: (U[A-Z2-7]+)/)?.[1];
        return key && key !== oldKey ? key : undefined;
      }, 20_000);
      await waitFor('a2 on NATS with its new key', async () => (await connections(monitorPort)).some((c) => c.authorized_user === newKey) || undefined, 20_000);
      expect(seedOf('a2')).not.toBe(oldSeed);
    } finally {
      await a2.stop();
    }
  }, 120_000);
});
