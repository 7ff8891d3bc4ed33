// Releases under load through real agents' traffic gates: no failed request, slow requests, held requests, a full queue, NATS down.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadGenerator } from '../../examples/demo/load.js';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { HeldRequest } from '../harness/held-request.js';
import { recordInstanceEvents, type SeenEvent } from '../harness/instance-events.js';

const APP = 'shop';
/** blue: two agents with the default gate; tiny: one agent whose gate holds at most one request. */
const AGENTS = [
  { id: 't1', group: 'blue', args: [] as string[] },
  { id: 't2', group: 'blue', args: [] as string[] },
  { id: 't3', group: 'tiny', args: ['--gate-queue', '1', '--gate-hold', '20s'] },
];
/** An app that opted out of the gate, on its own agent: it drains itself and reports its in-flight count. */
const SOLO = 'solo';

describe('interruption-free releases through the traffic gate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-traffic-'));
  const fleet = new Fleet(dir);
  const ports: Record<string, number> = {};
  const events: SeenEvent[] = [];
  const current: Record<string, string> = { blue: '1.0', tiny: '1.0', solo: '1.0' };
  let nc: NatsConnection;

  const url = (id: string, path = '/') => `http://127.0.0.1:${ports[id]}${path}`;
  /** Where an agent runs an edition of an app from (a held request's release file goes there). */
  const editionDir = (id: string, app: string, edition: string) => join(dir, 'agents', id, 'apps', app, 'editions', edition);
  /** The edition a group does not run now: each release flips between 1.0 and 2.0. */
  const other = (group: string) => (current[group] === '1.0' ? '2.0' : '1.0');

  async function release(group: string, args: string[], statuses = ['Released', 'Release failed'], app = APP) {
    const edition = other(group);
    const created = await fleet.cli(['release', 'create', app, '--edition', edition, '--group', group, '--batch-mode', 'auto', '--wait', '0s', ...args]);
    expect(created.code, created.stderr).toBe(0);
    const detail = await fleet.adminClient.waitForRelease(created.stdout.trim().split(/\s+/).pop()!, statuses, 90_000);
    if (detail.release?.status === 'Released') current[group] = edition;
    return { detail, edition };
  }

  /** Resolves with the first event of `type` from `instance` seen after this call. */
  function nextEvent(type: string, instance: string): Promise<SeenEvent> {
    const from = events.length;
    const found = waitFor(`${type} from ${instance}`, () => events.slice(from).find((e) => e.type === `io.fleetwave.instance.${type}` && e.instance === instance), 60_000);
    // Awaited later by the test; a test that failed before that must not leave an unhandled rejection behind.
    found.catch(() => undefined);
    return found;
  }

  beforeAll(async () => {
    // Given a controller, nats-server and three agents serving the sample app (half a second to start), on 1.0
    await fleet.startNats();
    nc = await recordInstanceEvents(fleet.nats!.url, events);
    await fleet.startController();
    for (const agent of AGENTS) {
      ports[agent.id] = await freePort();
      await fleet.startAgent(agent.id, agent.group, { [APP]: ports[agent.id]! }, agent.args);
    }
    ports.t4 = await freePort();
    await fleet.startAgent('t4', 'solo', { [SOLO]: ports.t4 });
    await fleet.adminClient.waitForAgents([...AGENTS.map((a) => a.id), 't4']);
    // Stop-first: this suite checks the quiesce ─▶ drain ─▶ restart pipeline (start-first has its own suite).
    const app = await fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=500', '--update-order', 'stop-first']);
    expect(app.code, app.stderr).toBe(0);
    const solo = await fleet.cli(['app', 'create', SOLO, '--start', 'node server.js', '--env', 'START_DELAY_MS=200', '--drain-mode', 'self', '--quiesce-hook', '/quiesce', '--inflight-path', '/inflight']);
    expect(solo.code, solo.stderr).toBe(0);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      for (const name of [APP, SOLO]) {
        const installed = await fleet.cli(['edition', 'install', name, edition, '--file', pkg.path]);
        expect(installed.code, installed.stderr).toBe(0);
      }
    }
    for (const name of [APP, SOLO]) {
      const created = await fleet.cli(['release', 'create', name, '--edition', '1.0', '--group', 'all', '--batches', '1']);
      expect(created.code, created.stderr).toBe(0);
      const deployed = await fleet.adminClient.waitForRelease(created.stdout.trim().split(/\s+/).pop()!, ['Released', 'Release failed'], 90_000);
      expect(deployed.release?.status).toBe('Released');
    }
  });

  afterAll(async () => {
    await nc?.close();
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['soft', 'hard'])('releases under steady load with a %s reset and fails no request', async (reset) => {
    // Given two clients per instance sending requests back to back through the gates
    const load = new LoadGenerator({ urls: [url('t1'), url('t2')], concurrency: 2 });
    load.start();
    await waitFor('requests to flow', () => load.snapshot().ok > 20);

    // When the blue group is released one instance at a time
    const { detail, edition } = await release('blue', ['--batches', '2', '--reset', reset, '--drain', '5s']);
    const summary = await load.stop();

    // Then it is Released, both instances answer from the new edition, and not one request failed
    expect(detail.release?.status).toBe('Released');
    expect(detail.instances.map((i) => i.steps.map((s) => s.step).includes(reset === 'soft' ? 'restart' : 'hard-reset'))).toEqual([true, true]);
    expect(summary.failures).toEqual({});
    expect(summary.failed).toBe(0);
    expect(summary.byEdition[edition]).toBeGreaterThan(0);
  });

  it('lets a slow request that outlives the drain finish on the old edition', async () => {
    // Given a slow request in flight on t1 (the app counts it), which ends only when the test lets it go
    const old = current.blue!;
    const slow = new HeldRequest(ports.t1!, editionDir('t1', APP, old));
    await slow.inFlight();
    const quiesced = nextEvent('quiesce.started', 't1');
    const drained = nextEvent('drained', 't1');

    // When a release with a 500 ms drain restarts t1, and the request goes on past the drain's end
    const done = release('blue', ['--batches', '2', '--drain', '500ms']);
    expect((await quiesced).data.inFlight).toBeGreaterThanOrEqual(1);
    expect((await drained).data).toMatchObject({ timedOut: true });
    slow.release();

    // Then the drain gave up after its interval, yet the slow request was answered by the old edition, and the release finished
    expect(await slow.answer).toEqual({ status: 200, body: expect.objectContaining({ edition: old }) });
    expect((await done).detail.release?.status).toBe('Released');
  });

  it('holds a request that arrives during the reset and answers it from the new edition', async () => {
    // Given t1 quiesced, its drain held open by a request in flight
    const blocker = new HeldRequest(ports.t1!, editionDir('t1', APP, current.blue!));
    await blocker.inFlight();
    const quiesced = nextEvent('quiesce.started', 't1');
    const done = release('blue', ['--batches', '2', '--drain', '120s']);
    await quiesced;

    // When a request arrives then, it is held by the gate (not refused, not sent to the old edition)
    const from = events.length;
    const answer = fetch(url('t1')).then(async (res) => ({ status: res.status, body: (await res.json()) as { edition: string } }));
    await waitFor('the gate to hold the request', () =>
      events.slice(from).some((e) => e.type === 'io.fleetwave.instance.drain.progress' && e.instance === 't1' && Number(e.data.held) >= 1),
    );
    blocker.release();

    // Then it waited for the new edition instead of failing
    const { detail, edition } = await done;
    expect(await answer).toEqual({ status: 200, body: expect.objectContaining({ edition }) });
    expect(detail.release?.status).toBe('Released');
  });

  it('answers 503 with Retry-After when the hold queue is full, without hanging', async () => {
    // Given t3, whose gate holds at most one request, quiesced with its drain held open by a request in flight
    const blocker = new HeldRequest(ports.t3!, editionDir('t3', APP, current.tiny!));
    await blocker.inFlight();
    const quiesced = nextEvent('quiesce.started', 't3');
    const done = release('tiny', ['--batches', '1', '--drain', '120s']);
    await quiesced;

    // When three requests arrive during the reset
    const answers = [0, 1, 2].map(async () => {
      const res = await fetch(url('t3'));
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
    });
    const settled: Array<{ status: number; retryAfter: string | null; body: string }> = [];
    for (const a of answers) void a.then((r) => settled.push(r), () => undefined);

    // Then two are refused at once with Retry-After, while the drain is still held open (nothing waits for it)
    await waitFor('two refusals', () => settled.filter((r) => r.status === 503).length === 2);
    expect(settled).toHaveLength(2);
    for (const r of settled) {
      expect(r.retryAfter).toBe('1');
      expect(r.body).toMatch(/queue is full/);
    }

    // And the one held is answered by the new edition once the drain ends
    blocker.release();
    const { edition } = await done;
    const all = await Promise.all(answers);
    const held = all.filter((a) => a.status === 200);
    expect(held).toHaveLength(1);
    expect(JSON.parse(held[0]!.body)).toMatchObject({ edition });
  });

  it('lets an app that opted out of the gate drain itself through its hook and in-flight count', async () => {
    // Given a slow request in flight on the self-draining app (which listens on the service port itself)
    const old = current.solo!;
    const slow = new HeldRequest(ports.t4!, editionDir('t4', SOLO, old));
    await slow.inFlight();
    const quiesced = nextEvent('quiesce.started', 't4');
    const drained = nextEvent('drained', 't4');
    const done = release('solo', ['--batches', '1', '--drain', '120s'], undefined, SOLO);

    // When the agent quiesces it: the hook turned its health to 503, and nothing holds new requests (the old edition answers)
    expect((await quiesced).data.inFlight).toBeGreaterThanOrEqual(1);
    expect((await fetch(url('t4', '/healthz'))).status).toBe(503);
    expect(((await (await fetch(url('t4'))).json()) as { edition: string }).edition).toBe(old);
    slow.release();

    // Then the drain ended when the app reported 0 in flight (not on the 120 s interval), and the new edition serves
    const { detail, edition } = await done;
    expect((await drained).data).toMatchObject({ timedOut: false, inFlight: 0 });
    expect(await slow.answer).toEqual({ status: 200, body: expect.objectContaining({ edition: old }) });
    expect(detail.release?.status).toBe('Released');
    expect(((await (await fetch(url('t4'))).json()) as { edition: string }).edition).toBe(edition);
  });

  it('finishes a release on the drainage interval while NATS is down', async () => {
    // Given nats-server stopped: no `drained` event can reach the controller
    await nc.close();
    await fleet.nats!.stop();

    // When blue is released with a short drain
    const started = Date.now();
    const { detail, edition } = await release('blue', ['--batches', '1', '--drain', '1s']);

    // Then each drain lasted its interval and the release still reached Released
    expect(detail.release?.status).toBe('Released');
    expect(Date.now() - started).toBeGreaterThan(1000);
    const drains = detail.instances.flatMap((i) => i.steps.filter((s) => s.step === 'drain'));
    expect(drains.length).toBe(2);
    for (const d of drains) expect(Number(d.finishedUnixMs) - Number(d.startedUnixMs)).toBeGreaterThanOrEqual(900);
    for (const id of ['t1', 't2']) expect(((await (await fetch(url(id))).json()) as { edition: string }).edition).toBe(edition);
  });
});
