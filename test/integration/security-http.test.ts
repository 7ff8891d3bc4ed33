// The HTTP side of a secured controller (issue 8, defect 5): HTTPS with the controller's certificate, /events and
// /metrics for viewer tokens and above, /artifacts for agent credentials, /healthz open; a release over it; and a
// TLS mismatch on the gRPC port named as such (defect 6). Real processes throughout.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../cli/client.js';
import { channelCredentials } from '../../common/tls.js';
import { buildEdition } from '../../examples/demo/package.js';
import { freePort, repoPath, runCli, startAgent, waitFor } from '../harness/fleet.js';
import { httpsGet, startSecureFleet, type SecureFleet } from './secure-fleet.js';

describe('the HTTP side of a secured controller', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-https-'));
  let fleet: SecureFleet;
  let admin: AdminClient;
  let ca: Buffer;
  let viewer = '';
  let joinToken = '';
  let servicePort = 0;
  const base = () => fleet.controller.httpUrl;

  beforeAll(async () => {
    fleet = await startSecureFleet(dir);
    ca = readFileSync(fleet.caFile);
    admin = new AdminClient(fleet.controller.grpcAddress, 'test', { credentials: channelCredentials(fleet.caFile), token: fleet.admin });
    viewer = await fleet.newToken('dash', 'viewer');
    joinToken = await fleet.newToken('join-web', 'agent');
    servicePort = await freePort();
    await fleet.launchAgent('web-1', { instances: { shop: servicePort }, args: ['--join-token', joinToken] });
    await waitFor('web-1 connected', async () => (await admin.listAgents()).agents.some((a) => a.id === 'web-1' && a.status === 'connected'), 30_000);
  }, 90_000);

  afterAll(async () => {
    admin?.close();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks only HTTPS, and /healthz needs no credential', async () => {
    expect(base()).toMatch(/^https:/);
    await expect(fetch(base().replace('https:', 'http:') + '/healthz')).rejects.toThrow();
    expect(await httpsGet(`${base()}/healthz`, { ca })).toEqual({ status: 200, body: 'ok\n' });
  });

  it('refuses /events and /metrics without a token, with a wrong one, or with a join token', async () => {
    for (const path of ['/events', '/metrics']) {
      const none = await httpsGet(base() + path, { ca });
      expect(none.status).toBe(401);
      expect(none.body.trim().split('\n')).toHaveLength(1);
      expect((await httpsGet(base() + path, { ca, token: 'fwt_forged' })).status).toBe(401);
      const agentRole = await httpsGet(base() + path, { ca, token: joinToken });
      expect(agentRole.status).toBe(403);
      expect(agentRole.body).toMatch(/needs the viewer (or metrics )?role; token 'join-web' is agent/);
    }
    const metrics = await httpsGet(`${base()}/metrics`, { ca, token: viewer });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/fleetwave_/);
  });

  it('serves artifacts only to an agent credential, and a release downloads them over HTTPS', async () => {
    // Given the app and an edition uploaded (its URL is the controller's https artifact URL)
    expect((await fleet.cli(fleet.admin, ['app', 'create', 'shop', '--start', 'node server.js'])).code).toBe(0);
    const pkg = await buildEdition({ sourceDir: repoPath('examples', 'app'), edition: '1.0', outDir: dir, name: 'shop' });
    expect((await fleet.cli(fleet.admin, ['edition', 'install', 'shop', '1.0', '--file', pkg.path])).code).toBe(0);
    const edition = (await admin.listEditions('shop')).editions.find((e) => e.name === '1.0')!;
    expect(edition.url).toBe(`${base()}/artifacts/${edition.sha256}`);
    // Then nobody without an agent credential gets it, not even a viewer
    expect((await httpsGet(edition.url, { ca })).status).toBe(401);
    expect((await httpsGet(edition.url, { ca, token: viewer })).status).toBe(401);
    // While a dashboard with the viewer token watches the event stream
    const events = httpsGet(`${base()}/events`, { ca, token: viewer, until: /"to":"Released"/ });
    // When a release runs
    const created = await fleet.cli(fleet.admin, ['release', 'create', 'shop', '--edition', '1.0', '--group', 'all', '--batches', '1', '--drain', '1s']);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim().split(/\s+/).pop()!;
    const detail = await waitFor('the release to end', async () => {
      const d = await admin.getRelease(id);
      return ['Released', 'Release failed'].includes(d.release?.status ?? '') ? d : undefined;
    }, 60_000);
    // Then the agent downloaded over HTTPS with its credential, the app serves 1.0, and the viewer saw it happen
    expect(detail.release?.status).toBe('Released');
    expect(await (await fetch(`http://127.0.0.1:${servicePort}/`)).json()).toMatchObject({ edition: '1.0' });
    const stream = await events;
    expect(stream.status).toBe(200);
    expect(stream.body).toMatch(/event: io\.fleetwave\.release\.status\.changed/);
    const credential = JSON.parse(readFileSync(join(dir, 'agents', 'web-1', 'credential.json'), 'utf8')).credential as string;
    expect((await httpsGet(edition.url, { ca, token: credential })).status).toBe(200);
  });

  it('keeps fleetwave.db owner-only in an owner-only data dir', () => {
    const dataDir = join(dir, 'controller');
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    for (const file of ['fleetwave.db', 'fleetwave.db-wal', 'fleetwave.db-shm']) expect(statSync(join(dataDir, file)).mode & 0o777).toBe(0o600);
  });

  it('says "speaks TLS" to a plaintext CLI, and "does not speak TLS" to a TLS CLI at a plaintext port', async () => {
    const plaintext = await runCli(['--token', fleet.admin, 'agent', 'list'], fleet.controller.grpcAddress, { timeoutMs: 30_000 });
    expect(plaintext.code).toBe(3);
    expect(plaintext.stderr.trim()).toMatch(/the controller at 127\.0\.0\.1:\d+ speaks TLS; pass --ca FILE/);
    expect(plaintext.stderr.trim().split('\n')).toHaveLength(1);
    // And an agent started --insecure against it logs the same, instead of reconnecting in silence
    const agent = await startAgent({ id: 'plain', group: 'blue', controller: fleet.controller.grpcAddress, natsUrl: fleet.nats.url, dataDir: join(dir, 'agents', 'plain'), instances: {}, logFile: join(dir, 'agent-plain.log') });
    fleet.agents.push(agent);
    await waitFor('the agent to name the mismatch', () => /speaks TLS; drop --insecure and pass --ca FILE/.test(readFileSync(join(dir, 'agent-plain.log'), 'utf8')), 30_000);
    await agent.stop();
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    try {
      const tls = await runCli(['--ca', fleet.caFile, '--token', fleet.admin, 'agent', 'list'], `127.0.0.1:${port}`, { timeoutMs: 30_000 });
      expect(tls.code).toBe(3);
      expect(tls.stderr.trim()).toMatch(/does not speak TLS \(it runs --insecure\)/);
    } finally {
      server.forceShutdown();
    }
  });
});
