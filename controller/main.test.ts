// The assembled controller over real gRPC and HTTP, with scripted agents and NATS unreachable.
import { credentials, Metadata, status, type ClientDuplexStream } from '@grpc/grpc-js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { AdminServiceClient, CreateAppRequest, CreateReleaseRequest, type ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { AgentServiceClient, type AgentMessage, type ControllerMessage } from '../proto/gen/fleetwave/v1/agent.js';
import { runController, type RunningController } from './main.js';
import { waitFor as until } from '../test/harness/wait.js';

type Session = ClientDuplexStream<AgentMessage, ControllerMessage>;

let dir: string;
let controller: RunningController;
let admin: AdminServiceClient;
let agents: AgentServiceClient;
const sessions: Session[] = [];
/** timeout_ms of every command the scripted agents received. */
const timeouts: number[] = [];
/** Ids of the commands each scripted agent received. */
const received: Record<string, string[]> = {};

function call<Req, Res>(method: (req: Req, md: Metadata, cb: (err: any, res: Res) => void) => unknown, req: Req): Promise<Res> {
  const md = new Metadata();
  md.set('x-fleetwave-actor', 'tester');
  return new Promise((resolve, reject) => method.call(admin, req, md, (err, res) => (err ? reject(err) : resolve(res))));
}

/** A scripted agent: says hello (its clock `clockOffsetMs` off), answers every command ok and publishes nothing (NATS is away). */
function startAgent(id: string, group: string, activeEdition: string, clockOffsetMs = 0, quiesced = false): Session {
  const session = agents.session();
  let edition = activeEdition;
  session.on('data', (m: ControllerMessage) => {
    const c = m.command;
    if (!c) return;
    timeouts.push(c.timeoutMs);
    (received[id] ??= []).push(c.commandId);
    edition = c.restartApp?.edition ?? c.startApp?.edition ?? edition;
    session.write({ result: { commandId: c.commandId, ok: true, error: '', replayed: false, startedUnixMs: Date.now(), finishedUnixMs: Date.now(), activeEdition: edition, updateOrder: '', instance: { app: 'shop', servicePort: 9000, activeEdition: edition, keptEditions: [edition], processState: 'running', quiesced: false } } });
  });
  session.on('error', () => {});
  session.write({
    hello: {
      agentId: id,
      host: id,
      group,
      labels: {},
      bootId: 'boot-1',
      advertiseAddress: '',
      upgradeFailure: undefined,
      version: 'test',
      eventPublicKey: Buffer.alloc(0),
      sentUnixMs: Date.now() + clockOffsetMs,
      instances: [{ app: 'shop', servicePort: 9000, activeEdition, keptEditions: [activeEdition], processState: 'running', quiesced }],
    },
  });
  sessions.push(session);
  return session;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-controller-'));
  controller = await runController(
    {
      listen: '127.0.0.1:0',
      http: '127.0.0.1:0',
      dataDir: dir,
      nats: 'nats://127.0.0.1:1',
      insecure: true,
      readyFile: join(dir, 'ready.json'),
      heartbeatTimeout: '2s',
    },
    createLogger({ name: 'controller-test', level: 'silent' }),
  );
  admin = new AdminServiceClient(`127.0.0.1:${controller.grpcPort}`, credentials.createInsecure());
  agents = new AgentServiceClient(`127.0.0.1:${controller.grpcPort}`, credentials.createInsecure());
});

afterAll(async () => {
  for (const s of sessions) s.cancel();
  admin?.close();
  agents?.close();
  await controller?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the controller', () => {
  it('writes its ready file once listening', () => {
    const ready = JSON.parse(readFileSync(join(dir, 'ready.json'), 'utf8'));
    expect(ready).toEqual({ grpc: controller.grpcPort, http: controller.httpPort, pid: process.pid });
  });

  it('releases an uploaded edition to connected agents without NATS', async () => {
    // h3's clock is ten minutes fast: deadlines travel as time left, so its release goes as the others'.
    for (const [id, group, offset] of [['h1', 'blue', 0], ['h2', 'blue', 0], ['h3', 'green', 600_000]] as const) startAgent(id, group, '1.0', offset);
    await call(admin.createApp, { app: { name: 'shop', startCommand: ['node', 'app.js'], env: {}, portEnv: '', healthPath: '', stopTimeoutMs: 0, createdUnixMs: 0, drainMode: '', quiesceHook: '', inflightPath: '', updateOrder: '', startGraceMs: 0, healthInitialIntervalMs: 0, holdMs: 0 } });
    // Not a tarball: installed as a single file (a tar.gz upload is inspected at install and this would be refused).
    const content = Buffer.from('not really a tarball');
    const edition: any = await call(admin.installEdition, { app: 'shop', name: '2.0', description: 'new', content, url: '', sha256: '', size: 0, format: 'file', fileName: 'app.bin' });
    expect(edition.url).toBe(`http://127.0.0.1:${controller.httpPort}/artifacts/${edition.sha256}`);
    const artifact = await fetch(edition.url);
    expect(Buffer.from(await artifact.arrayBuffer())).toEqual(content);
    await expect(call(admin.installEdition, { app: 'shop', name: '2.0', description: '', content, url: '', sha256: '', size: 0, format: 'file', fileName: 'app.bin' })).rejects.toMatchObject({
      code: status.ALREADY_EXISTS,
    });

    await until('agents connected', async () => ((await call(admin.listAgents, { query: undefined })) as any).agents.filter((a: any) => a.status === 'connected').length === 3);
    const created: ReleaseDetail = await call(admin.createRelease, CreateReleaseRequest.fromPartial({ spec: { app: 'shop', edition: '2.0', group: 'all', batches: 1, start: true, drainMs: 50 } }));
    expect(created.release!.createdBy).toBe('tester');

    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const watch = admin.watchRelease({ id: created.release!.id, query: undefined });
      watch.on('data', (d: ReleaseDetail) => seen.push(d.release!.status));
      watch.on('end', () => resolve());
      watch.on('error', reject);
    });
    expect(seen.at(-1)).toBe('Released');
    expect(timeouts.length).toBeGreaterThan(0);
    for (const t of timeouts) expect(t).toBeGreaterThan(0);
    const listed: any = await call(admin.listAgents, { query: undefined });
    const skew = Object.fromEntries(listed.agents.map((a: any) => [a.id, Number(a.clockSkewMs)]));
    expect(Math.abs(skew.h1)).toBeLessThan(5_000);
    expect(skew.h3).toBeGreaterThan(590_000);
    const instances: any = await call(admin.listInstances, { app: 'shop', query: undefined });
    expect(instances.instances.map((i: any) => i.edition)).toEqual(['2.0', '2.0', '2.0']);
    const history: any = await call(admin.history, { app: 'shop' });
    expect(history.changes.map((c: any) => c.action)).toEqual(['create', 'start']);
  });

  it('lets in an instance that comes back quiesced with no release to finish it', async () => {
    // An agent restarted after its release step timed out keeps its gate quiesced until a health check passes.
    startAgent('q1', 'blue', '1.0', 0, true);
    const ids = await until('the un-quiesce health check', async () => received.q1?.find((c) => c.startsWith('unquiesce-shop-')));
    expect(ids).toBeTruthy();
    await until('the instance reported open again', async () => {
      const listed: any = await call(admin.listInstances, { app: 'shop', query: undefined });
      return listed.instances.some((i: any) => i.instance === 'q1' && i.quiesced === false);
    });
  });

  it('maps errors to status codes with one clear line', async () => {
    await expect(call(admin.getRelease, { id: 'nope', query: undefined })).rejects.toMatchObject({ code: status.NOT_FOUND, details: "release 'nope' does not exist" });
    await expect(call(admin.createApp, CreateAppRequest.fromPartial({ app: { name: 'Bad Name', startCommand: ['x'] } }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(call(admin.createRelease, CreateReleaseRequest.fromPartial({ spec: { app: 'shop', edition: '9.9' } }))).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('closes a session whose first message is not Hello', async () => {
    const session = agents.session();
    const err = await new Promise<any>((resolve) => {
      session.on('error', resolve);
      session.on('data', () => {});
      session.write({ heartbeat: { sentUnixMs: Date.now(), runningCommandIds: [] } });
    });
    expect(err.code).toBe(status.INVALID_ARGUMENT);
  });

  it('marks a silent agent unreachable after the heartbeat timeout', async () => {
    startAgent('quiet', 'blue', '1.0');
    await until('quiet connected', async () => ((await call(admin.listAgents, { query: undefined })) as any).agents.find((a: any) => a.id === 'quiet' && a.status === 'connected'));
    await until('quiet unreachable', async () => ((await call(admin.listAgents, { query: undefined })) as any).agents.find((a: any) => a.id === 'quiet' && a.status === 'unreachable'));
  });

  it('serves health, metrics and refuses unknown artifacts', async () => {
    const base = `http://127.0.0.1:${controller.httpPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('fleetwave_releases{status="Released"} 1');
    expect(metrics).toContain('fleetwave_commands_sent_total');
    expect((await fetch(`${base}/artifacts/${'0'.repeat(64)}`)).status).toBe(404);
    expect((await fetch(`${base}/artifacts/..%2f..%2fetc%2fpasswd`)).status).toBe(404);
    expect(existsSync(join(dir, 'fleetwave.db'))).toBe(true);
  });
});
