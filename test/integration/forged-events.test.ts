// Forged agent events against a fleet secured as docs/design.md says (TLS, tokens, one NATS user per agent that may
// publish only on its own ingest subject): the controller believes an instance event only when its subject, source,
// data and signature agree with the agent that sent it, and only believed events reach SSE and the JetStream stream.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, sign } from 'node:crypto';
import { agentSource, ingestSubject, instanceEvent, releaseEvent, SIGNATURE_HEADER, signedBytes, STREAM_NAME } from '../../common/events.js';
import { channelCredentials, initCaDir } from '../../common/tls.js';
import { AdminClient } from '../../cli/client.js';
import { EVENT_KEY_FILE } from '../../agent/event-key.js';
import { buildEdition } from '../../examples/demo/package.js';
import { freePort, repoPath, runCli, startAgent, startController, startNats, waitFor, type AgentProc, type ControllerProc, type Nats, type NatsUsers } from '../harness/fleet.js';
import { readSse, readStream, rejectedCount, runControllerOnce, type HttpAccess } from './forged-support.js';

const PASS = 'pw';
/** The deploy/ example: an agent publishes only on its own ingest subject and reads nothing. */
const agentUser = (id: string) => ({ user: id, password: PASS, permissions: { publish: { allow: [`fleetwave.ingest.*.instance.${id}`] }, subscribe: { deny: ['>'] } } });
const USERS: NatsUsers = {
  users: [
    { user: 'controller', password: PASS, permissions: { publish: { allow: ['fleetwave.events.>', '$JS.API.>', '$JS.ACK.FLEETWAVE_INGEST.>'] }, subscribe: { allow: ['fleetwave.ingest.>', '_INBOX.>'] } } },
    agentUser('a1'),
    agentUser('a2'),
    { user: 'watcher', password: PASS },
  ],
};
const natsAs = (nats: Nats, user: string) => connect({ servers: nats.url, user, pass: PASS });

describe('forged events in a secured fleet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-forged-'));
  const caDir = join(dir, 'ca');
  const caFile = join(caDir, 'ca.crt');
  const ports: Record<string, number> = {};
  const agents: AgentProc[] = [];
  const connections: NatsConnection[] = [];
  let nats: Nats;
  let controller: ControllerProc;
  let admin = '';
  let client: AdminClient;
  let sse: ReturnType<typeof readSse>;
  /** The HTTP side is HTTPS with a token in secure mode. */
  let access: HttpAccess;
  let forger: NatsConnection;

  const cli = async (args: string[]) => {
    const res = await runCli(['--ca', caFile, '--token', admin, ...args], controller.grpcAddress);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout.trim();
  };
  const release = async (args: string[]) => (await cli(['release', 'create', 'shop', '--batches', '1', ...args])).split(/\s+/).pop()!;
  const waitReleased = (id: string) =>
    waitFor(`release ${id} to end`, async () => {
      const detail = await client.getRelease(id);
      return detail.release?.finishedUnixMs ? detail : undefined;
    }, 90_000);

  beforeAll(async () => {
    // Given a CA, NATS with one user per agent, a secure controller, and agents a1 (blue) and a2 (green) serving shop
    initCaDir(caDir);
    nats = await startNats(join(dir, 'nats'), join(dir, 'nats.log'), USERS);
    controller = await startController({
      dataDir: join(dir, 'controller'), natsUrl: nats.url, insecure: false, logFile: join(dir, 'controller.log'),
      args: ['--tls-dir', caDir, '--bootstrap-token-file', join(dir, 'admin.token'), '--nats-user', 'controller', '--nats-pass', PASS],
    });
    admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    client = new AdminClient(controller.grpcAddress, 'test', { credentials: channelCredentials(caFile), token: admin });
    access = { ca: readFileSync(caFile), token: admin };
    sse = readSse(`${controller.httpUrl}/events`, access);
    const joinToken = await cli(['token', 'create', 'join', '--role', 'agent']);
    for (const [id, group] of [['a1', 'blue'], ['a2', 'green']] as const) {
      ports[id] = await freePort();
      agents.push(await startAgent({
        id, group, controller: controller.grpcAddress, natsUrl: nats.url, dataDir: join(dir, 'agents', id), instances: { shop: ports[id]! },
        insecure: false, logFile: join(dir, `agent-${id}.log`), args: ['--ca', caFile, '--join-token', joinToken, '--nats-user', id, '--nats-pass', PASS],
      }));
    }
    await waitFor('a1 and a2 connected', async () => (await client.listAgents()).agents.filter((a) => a.status === 'connected').length === 2, 30_000);
    // Stop-first: the forged `drained` targets the drain of a quiesced instance (start-first has none).
    await cli(['app', 'create', 'shop', '--start', 'node server.mjs', '--update-order', 'stop-first']);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('test/integration/fixtures/hold-app'), edition, outDir: join(dir, 'packages'), name: 'shop' });
      await cli(['edition', 'install', 'shop', edition, '--file', pkg.path]);
    }
    const first = await waitReleased(await release(['--edition', '1.0', '--group', 'all']));
    expect(first.release?.status, first.release?.message).toBe('Released');
    forger = await natsAs(nats, 'a2');
    connections.push(forger);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(connections.map((c) => c.close().catch(() => {})));
    sse?.close();
    client?.close();
    await Promise.all(agents.map((a) => a.stop()));
    await controller?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("does not let a2's forged `drained` cut a1's drain short: the drain ends with the test's request, which gets 200", async () => {
    // Given a request to a1 in flight that ends only when the test ends it
    const held = await holdRequest(ports.a1!);
    // When a1 is released to 2.0 with a 60 s drain, and a2 publishes a `drained` naming a1 every 100 ms on its own subject
    const id = await release(['--edition', '2.0', '--group', 'blue', '--drain', '60s']);
    await waitFor('a1 draining', async () => (await client.getRelease(id)).instances.find((i) => i.instance === 'a1')?.steps.some((s) => s.step === 'drain' && s.status === 'running'), 30_000);
    let sent = 0;
    const forge = setInterval(() => {
      const { event } = instanceEvent(agentSource('a1'), 'shop', 'a1', 'drained', { inFlight: 0, forged: true });
      forger.publish(ingestSubject('shop', 'a2'), JSON.stringify(event));
      sent++;
    }, 100);
    try {
      // Then, once the controller has seen 20 forged events (or the drain ended), a1 is still draining
      const a1Drain = async () => (await client.getRelease(id)).instances.find((i) => i.instance === 'a1')!.steps.find((s) => s.step === 'drain')?.status;
      await waitFor('20 forged events refused', async () => sent >= 20 && ((await rejectedCount(controller.httpUrl, 'mismatch', access)) >= 20 || (await a1Drain()) !== 'running'), 30_000);
      expect(await a1Drain()).toBe('running');
    } finally {
      clearInterval(forge);
    }
    // And the drain ends once the test's request has finished, which got its whole answer
    const endedAt = Date.now();
    const answer = await held.finish();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.split('\n').at(-1)!)).toMatchObject({ edition: '1.0', bytes: 2 });
    const detail = await waitReleased(id);
    expect(detail.release?.status, detail.release?.message).toBe('Released');
    const drain = detail.instances.find((i) => i.instance === 'a1')!.steps.find((s) => s.step === 'drain')!;
    expect(drain.finishedUnixMs).toBeGreaterThanOrEqual(endedAt);
    expect(drain.error).not.toMatch(/interval/);
    // And a1's own `drained` made it to SSE, while no forged one did
    expect(sse.events().some((e) => e.type === 'io.fleetwave.instance.drained' && e.data.instance === 'a1' && !e.data.forged)).toBe(true);
    expect(sse.events().filter((e) => e.data.forged)).toEqual([]);
  }, 120_000);

  it('keeps a fake controller event and non-CloudEvent JSON from an agent off SSE and out of the stream', async () => {
    // When a2 publishes, on its own subject, a release status change in the controller's name and plain JSON with a script
    const fake = releaseEvent('fleetwave/controller', 'shop', 'r-fake', 'status.changed', { from: 'Releasing', to: 'Released', forged: true });
    const before = await rejectedCount(controller.httpUrl, undefined, access);
    forger.publish(ingestSubject('shop', 'a2'), JSON.stringify(fake.event));
    forger.publish(ingestSubject('shop', 'a2'), JSON.stringify({ forged: true, html: '<script>alert("owned")</script>' }));
    // And it may not publish on a1's subject nor on the published subjects at all (NATS refuses; the controller never sees them)
    forger.publish(ingestSubject('shop', 'a1'), JSON.stringify(instanceEvent(agentSource('a1'), 'shop', 'a1', 'drained', { forged: true }).event));
    forger.publish('fleetwave.events.shop.instance.a1', JSON.stringify(instanceEvent(agentSource('a1'), 'shop', 'a1', 'drained', { forged: true }).event));
    // Then the controller refused the two it saw (or, were it fooled, they show on SSE)
    await waitFor('both refused', async () => sse.raw().includes('forged') || (await rejectedCount(controller.httpUrl, undefined, access)) >= before + 2, 20_000);
    expect(sse.raw()).not.toContain('<script>');
    expect(sse.events().filter((e) => e.data.forged || e.source === 'fleetwave/controller' && e.subject === 'shop/r-fake')).toEqual([]);
    // And the JetStream stream holds only the published subjects, and nothing forged
    const watcher = await natsAs(nats, 'watcher');
    connections.push(watcher);
    const info = await (await watcher.jetstreamManager()).streams.info(STREAM_NAME);
    expect(info.config.subjects).toEqual(['fleetwave.events.>']);
    const kept = await readStream(watcher);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.filter((m) => !m.subject.startsWith('fleetwave.events.') || m.text.includes('forged') || m.text.includes('<script>'))).toEqual([]);
  }, 60_000);

  it("refuses a revoked agent's events at once, even correctly signed ones", async () => {
    // Given an event a2 signed with its own key, on its own subject: believed
    const a2Key = createPrivateKey(readFileSync(join(dir, 'agents', 'a2', EVENT_KEY_FILE)));
    const signed = () => {
      const { event } = instanceEvent(agentSource('a2'), 'shop', 'a2', 'started', { edition: '1.0', pid: 1 });
      const subject = ingestSubject('shop', 'a2');
      const payload = new TextEncoder().encode(JSON.stringify(event));
      const h = headers();
      h.set(SIGNATURE_HEADER, sign(null, signedBytes(subject, payload), a2Key).toString('base64'));
      forger.publish(subject, payload, { headers: h });
      return event.id;
    };
    const good = signed();
    await waitFor("a2's signed event on SSE", () => sse.events().some((e) => e.id === good), 20_000);
    // When an admin revokes a2
    expect(await cli(['agent', 'revoke', 'a2'])).toMatch(/revoked/);
    // Then the same kind of event is refused, and never reaches SSE
    const before = await rejectedCount(controller.httpUrl, 'no_key', access);
    const late = signed();
    await waitFor('the event of the revoked agent refused', async () => (await rejectedCount(controller.httpUrl, 'no_key', access)) > before, 20_000);
    expect(sse.events().some((e) => e.id === late)).toBe(false);
  }, 60_000);
});

describe('a secure controller and a NATS server that lets anyone in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-open-nats-'));
  const caDir = join(dir, 'ca');
  let open: Nats;

  beforeAll(async () => {
    initCaDir(caDir);
    open = await startNats(join(dir, 'nats'));
  }, 30_000);

  afterAll(async () => {
    await open?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to start with one line and a non-zero exit, and starts with --nats-insecure', async () => {
    const refused = await runControllerOnce(join(dir, 'c1'), open.url, ['--tls-dir', caDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/does not require authentication.*--nats-insecure/);
    const accepted = await startController({ dataDir: join(dir, 'c2'), natsUrl: open.url, insecure: false, logFile: join(dir, 'c2.log'), args: ['--tls-dir', caDir, '--nats-insecure'] });
    await waitFor('nats connected', () => /nats connected/.test(readFileSync(join(dir, 'c2.log'), 'utf8')), 20_000);
    await accepted.stop();
  }, 60_000);

  it('starts while NATS is away, then refuses to use it when it turns out to be open', async () => {
    await open.stop();
    const log = join(dir, 'c3.log');
    const controller = await startController({ dataDir: join(dir, 'c3'), natsUrl: open.url, insecure: false, logFile: log, args: ['--tls-dir', caDir] });
    try {
      await open.restart();
      await waitFor('the refusal in the log', () => /does not require authentication/.test(readFileSync(log, 'utf8')), 20_000);
      expect(readFileSync(log, 'utf8')).not.toMatch(/nats connected/);
    } finally {
      await controller.stop();
    }
  }, 60_000);
});

/** POST /hold to the gate: resolves once the app answered its first line; `finish()` ends the upload and reads the answer. */
function holdRequest(port: number): Promise<{ finish(): Promise<{ status: number; body: string }> }> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request({ host: '127.0.0.1', port, method: 'POST', path: '/hold', headers: { 'content-type': 'text/plain' } });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      const done = new Promise<{ status: number; body: string }>((ok, fail) => {
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
        res.on('error', fail);
        req.on('error', fail);
      });
      // Awaited by finish(); a test that failed earlier must not leave an unhandled rejection behind.
      done.catch(() => undefined);
      resolve({ finish: () => (req.end('y'), done) });
    });
    req.write('x');
    req.flushHeaders();
  });
}
