// Security end to end: TLS on the gRPC port, join tokens and agent credentials, roles on the admin API, revocation,
// and message limits, against a real controller and agent processes. Each case tries the bad way and sees it refused.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCaDir } from '../../common/tls.js';
import { channelCredentials } from '../../common/tls.js';
import { AdminClient } from '../../cli/client.js';
import { AgentServiceClient, type ControllerMessage } from '../../proto/gen/fleetwave/v1/agent.js';
import { SecurityServiceClient } from '../../proto/gen/fleetwave/v1/security.js';
import { buildEdition } from '../../examples/demo/package.js';
import { runCli, startAgent, startController, startNats, waitFor, repoPath, type AgentProc, type ControllerProc, type Nats } from '../harness/fleet.js';

describe('a controller with TLS and tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-security-'));
  const caDir = join(dir, 'ca');
  const caFile = join(caDir, 'ca.crt');
  const controllerLog = join(dir, 'controller.log');
  const agents: AgentProc[] = [];
  let nats: Nats;
  let controller: ControllerProc;
  let admin = '';
  let adminClient: AdminClient;

  const cli = (token: string, args: string[]) => runCli(['--ca', caFile, '--token', token, ...args], controller.grpcAddress);
  const newToken = async (name: string, role: string) => {
    const res = await cli(admin, ['token', 'create', name, '--role', role]);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout.trim();
  };
  const agentStatus = async (id: string) => (await adminClient.listAgents()).agents.find((a) => a.id === id)?.status;
  const logOf = () => (existsSync(controllerLog) ? readFileSync(controllerLog, 'utf8') : '');
  const launchAgent = async (id: string, args: string[]) => {
    const agent = await startAgent({
      id, group: 'blue', controller: controller.grpcAddress, natsUrl: nats.url, dataDir: join(dir, 'agents', id),
      instances: id === 'a1' ? { shop: 0 } : {}, insecure: false, args: ['--ca', caFile, ...args], logFile: join(dir, `agent-${id}.log`),
    });
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    // Given a CA made by `fleetwave ca init`'s code, and a controller serving TLS with a bootstrap admin token
    initCaDir(caDir);
    nats = await startNats(join(dir, 'nats'));
    controller = await startController({
      dataDir: join(dir, 'controller'), natsUrl: nats.url, insecure: false, logFile: controllerLog,
      // This suite is about gRPC; NATS without auth is accepted explicitly (forged-events.test.ts covers NATS auth).
      args: ['--tls-dir', caDir, '--nats-insecure', '--bootstrap-token-file', join(dir, 'admin.token'), '--max-message-size', '1MiB', '--heartbeat-timeout', '5s'],
    });
    admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    adminClient = new AdminClient(controller.grpcAddress, 'test', { credentials: channelCredentials(caFile), token: admin });
  }, 60_000);

  afterAll(async () => {
    adminClient?.close();
    await Promise.all(agents.map((a) => a.stop()));
    await controller?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets an agent in with a join token, then with its stored credential after a restart', async () => {
    // Given a join token
    const join1 = await newToken('join-blue', 'agent');
    // When an agent starts with it and the CA
    const agent = await launchAgent('a1', ['--join-token', join1]);
    // Then it enrols, stores a credential (0600) and connects over TLS
    await waitFor('a1 connected', async () => (await agentStatus('a1')) === 'connected', 30_000);
    const credentialFile = join(agent.dataDir, 'credential.json');
    expect(JSON.parse(readFileSync(credentialFile, 'utf8')).credential).toMatch(/^fwa_/);
    // And after the join token is revoked, a restart still gets in with the stored credential
    expect((await cli(admin, ['token', 'revoke', 'join-blue'])).code).toBe(0);
    await agent.stop();
    await waitFor('a1 unreachable', async () => (await agentStatus('a1')) === 'unreachable', 30_000);
    await launchAgent('a1', []);
    await waitFor('a1 connected again', async () => (await agentStatus('a1')) === 'connected', 30_000);
  });

  it('refuses an agent with a wrong join token and logs it', async () => {
    await launchAgent('intruder', ['--join-token', 'fwt_not-a-real-token']);
    await waitFor('the refusal in the controller log', () => /enrolment refused: wrong, revoked or expired join token/.test(logOf()), 30_000);
    expect(await agentStatus('intruder')).toBeUndefined();
  });

  it('refuses a client without a token, or on plaintext, and keeps a viewer from approving', async () => {
    const none = await runCli(['--ca', caFile, 'agent', 'list'], controller.grpcAddress);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/valid bearer token is required/);
    const plaintext = await runCli(['--token', admin, 'agent', 'list'], controller.grpcAddress, { timeoutMs: 30_000 });
    expect(plaintext.code).not.toBe(0);

    const viewer = await newToken('viewer-1', 'viewer');
    const listed = await cli(viewer, ['agent', 'list', '--output', 'json']);
    expect(listed.code, listed.stderr).toBe(0);
    const approve = await cli(viewer, ['release', 'approve', 'r-00000000', '--comment', 'looks good']);
    expect(approve.code).toBe(1);
    expect(approve.stderr).toMatch(/needs the operator role; token 'viewer-1' is viewer/);
    const mint = await cli(viewer, ['token', 'create', 'sneaky', '--role', 'admin']);
    expect(mint.stderr).toMatch(/needs the admin role/);
  });

  it('records the token name as the actor of every change', async () => {
    // Given an operator token and the app served by a1
    const ops = await newToken('ops-alice', 'operator');
    expect((await cli(ops, ['app', 'create', 'shop', '--start', 'node server.js'])).code).toBe(0);
    const pkg = await buildEdition({ sourceDir: repoPath('examples', 'app'), edition: '1.0', outDir: dir, name: 'shop' });
    const installed = await cli(ops, ['edition', 'install', 'shop', '1.0', '--file', pkg.path]);
    expect(installed.code, installed.stderr).toBe(0);
    // When the operator creates a release, claiming to be someone else
    const created = await runCli(['--ca', caFile, '--token', ops, 'release', 'create', 'shop', '--edition', '1.0', '--group', 'all', '--batches', '1', '--no-start'], controller.grpcAddress);
    expect(created.code, created.stderr).toBe(0);
    // Then the change record names the token, not the claimed actor
    const history = await cli(ops, ['history', 'shop', '--output', 'json']);
    const changes = JSON.parse(history.stdout) as Array<{ actor: string }>;
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.every((c) => c.actor === 'ops-alice')).toBe(true);
  });

  it('closes a revoked agent’s stream and refuses it afterwards', async () => {
    const join2 = await newToken('join-2', 'agent');
    await launchAgent('a2', ['--join-token', join2]);
    await waitFor('a2 connected', async () => (await agentStatus('a2')) === 'connected', 30_000);
    const revoked = await cli(admin, ['agent', 'revoke', 'a2']);
    expect(revoked.stdout).toMatch(/agent a2 revoked and disconnected/);
    await waitFor('a2 refused on its way back', () => /enrolment refused: agent is revoked/.test(logOf()), 30_000);
    expect(await agentStatus('a2')).toBe('unreachable');
  });

  it('closes only the stream that sends an oversized or malformed message', async () => {
    // Given a1 connected and a second agent's credential, enrolled by hand
    await waitFor('a1 connected', async () => (await agentStatus('a1')) === 'connected', 30_000);
    const join3 = await newToken('join-3', 'agent');
    const credential = await enrollByHand('big', join3);
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${credential}`);
    const client = new AgentServiceClient(controller.grpcAddress, channelCredentials(caFile));
    try {
      // When that agent says hello with a 2 MiB label (the limit is 1 MiB)
      const call = client.session(md);
      const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
      call.on('error', () => {});
      call.on('data', (_m: ControllerMessage) => {});
      call.write({ hello: { agentId: 'big', host: 'h', group: 'blue', labels: { pad: 'x'.repeat(2 * 1024 * 1024) }, bootId: 'b', version: 'test', instances: [], sentUnixMs: 0, eventPublicKey: Buffer.alloc(0), advertiseAddress: '', upgradeFailure: undefined } });
      // Then its stream ends with RESOURCE_EXHAUSTED
      expect((await status).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      // And a stream whose bytes are not a message ends too
      const raw = rawSessionClient(controller.grpcAddress, channelCredentials(caFile));
      const bad = raw.session(md);
      const badStatus = new Promise<grpc.StatusObject>((r) => bad.on('status', r));
      bad.on('error', () => {});
      bad.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
      expect((await badStatus).code).not.toBe(grpc.status.OK);
      raw.close();
      // While a1 stays connected, and the controller still answers
      expect(await agentStatus('a1')).toBe('connected');
    } finally {
      client.close();
    }
  });

  function enrollByHand(agentId: string, joinToken: string): Promise<string> {
    const client = new SecurityServiceClient(controller.grpcAddress, channelCredentials(caFile));
    return new Promise((resolve, reject) =>
      client.enroll({ joinToken, agentId }, (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res.credential);
      }),
    );
  }
});

/** A Session client that sends raw bytes, to deliver something that is not a protobuf message. */
function rawSessionClient(address: string, creds: grpc.ChannelCredentials) {
  const Ctor = grpc.makeGenericClientConstructor(
    {
      session: {
        path: '/fleetwave.v1.AgentService/Session',
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'AgentService',
  );
  return new Ctor(address, creds) as unknown as grpc.Client & { session(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> };
}
