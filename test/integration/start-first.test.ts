// Start-first releases through real agents (nats-server, controller, agents, sample app processes): the new edition
// starts beside the old one, the gate switches once it is healthy, the old one drains and stops; no request fails.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive } from '../../agent/supervisor.js';
import { LoadGenerator } from '../../examples/demo/load.js';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { HeldRequest } from '../harness/held-request.js';
import { recordInstanceEvents, type SeenEvent } from '../harness/instance-events.js';

const APP = 'shop';
const AGENTS = ['sf1', 'sf2'];
/** An agent whose free-memory floor no host reaches: it must fall back to stop-first. */
const TIGHT = 'sf3';

describe('start-first releases', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-start-first-'));
  const fleet = new Fleet(dir);
  const ports: Record<string, number> = {};
  const events: SeenEvent[] = [];
  let nc: NatsConnection;

  const url = (id: string, path = '/') => `http://127.0.0.1:${ports[id]}${path}`;
  const editionDir = (id: string, edition: string) => join(dir, 'agents', id, 'apps', APP, 'editions', edition);
  const answer = async (id: string) => (await (await fetch(url(id))).json()) as { edition: string; pid: number };
  const seen = (type: string, instance: string, match: (d: Record<string, unknown>) => boolean = () => true) =>
    events.filter((e) => e.type === `io.fleetwave.instance.${type}` && e.instance === instance && match(e.data));

  async function create(edition: string, args: string[] = [], group = 'blue'): Promise<string> {
    const created = await fleet.cli(['release', 'create', APP, '--edition', edition, '--group', group, '--batch-mode', 'auto', '--wait', '0s', ...args]);
    expect(created.code, created.stderr).toBe(0);
    return created.stdout.trim().split(/\s+/).pop()!;
  }

  beforeAll(async () => {
    // Given two agents serving the sample app, created without --update-order (start-first is the default), on 1.0
    await fleet.startNats();
    nc = await recordInstanceEvents(fleet.nats!.url, events);
    await fleet.startController();
    for (const id of AGENTS) {
      ports[id] = await freePort();
      await fleet.startAgent(id, 'blue', { [APP]: ports[id]! });
    }
    ports[TIGHT] = await freePort();
    await fleet.startAgent(TIGHT, 'tight', { [APP]: ports[TIGHT]! }, ['--start-first-min-free-memory', '100000GiB']);
    await fleet.adminClient.waitForAgents([...AGENTS, TIGHT]);
    // A long stop timeout: only the drain (the request in flight ending) lets the old process go in the test below.
    const app = await fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=300', '--stop-timeout', '30s']);
    expect(app.code, app.stderr).toBe(0);
    for (const edition of ['1.0', '2.0', 'bad']) {
      const source = join(dir, 'src', edition);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      if (edition === 'bad') writeFileSync(join(source, 'FAIL_HEALTH'), 'drill\n');
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(dir, 'packages') });
      const installed = await fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]);
      expect(installed.code, installed.stderr).toBe(0);
    }
    const deployed = await fleet.adminClient.waitForRelease(await create('1.0', ['--batches', '1'], 'all'), ['Released', 'Release failed'], 90_000);
    expect(deployed.release?.status).toBe('Released');
  }, 120_000);

  afterAll(async () => {
    await nc?.close();
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the new edition beside the old under load, switches, then drains and stops the old: no request fails', async () => {
    // Given clients hitting both service ports back to back, and a request held in flight on sf1's old process
    const oldPid = (await answer('sf1')).pid;
    const load = new LoadGenerator({ urls: [url('sf1'), url('sf2')], concurrency: 2 });
    load.start();
    await waitFor('requests to flow', () => load.snapshot().ok > 20);
    const held = new HeldRequest(ports.sf1!, editionDir('sf1', '1.0'));
    await held.inFlight();

    // When 2.0 is released one instance at a time
    const id = await create('2.0', ['--batches', '2']);

    // Then sf1's gate sends new requests to 2.0 while the old process still runs, serving the held request
    const switched = await waitFor('sf1 to answer from 2.0', async () => {
      const a = await answer('sf1');
      return a.edition === '2.0' ? a : undefined;
    }, 60_000);
    expect(switched.pid).not.toBe(oldPid);
    expect(alive(oldPid)).toBe(true);
    expect(alive(switched.pid)).toBe(true);
    expect(seen('stopped', 'sf1', (d) => d.edition === '1.0')).toEqual([]);

    // And once the held request ends (answered by the old edition), the old process stops and the release goes on
    held.release();
    expect(await held.answer).toEqual({ status: 200, body: expect.objectContaining({ edition: '1.0' }) });
    const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 90_000);
    const summary = await load.stop();
    expect(detail.release?.status, detail.release?.message).toBe('Released');
    expect(summary.failures).toEqual({});
    expect(summary.failed).toBe(0);
    expect(summary.byEdition['2.0']).toBeGreaterThan(0);
    await waitFor('the old process to be gone', () => !alive(oldPid));
    expect(seen('stopped', 'sf1', (d) => d.edition === '1.0' && d.expected === true)).toHaveLength(1);

    // The release says which order each instance used, and its timeline has no quiesce or drain
    for (const i of detail.instances) {
      expect(i.updateOrder).toBe('start-first');
      expect(i.steps.map((s) => s.step)).toEqual(['download', 'restart', 'health']);
    }
    for (const agent of AGENTS) expect(seen('started', agent, (d) => d.edition === '2.0' && d.updateOrder === 'start-first')).toHaveLength(1);
    expect(seen('quiesce.started', 'sf1')).toEqual([]);
    const show = await fleet.cli(['release', 'show', id]);
    expect(show.stdout).toMatch(/sf1 \(blue, batch 1\): released.*start-first/);
  }, 120_000);

  it('stops a new edition that fails its health check and never stops the old one', async () => {
    // Given both instances on 2.0, under load
    const before = { sf1: await answer('sf1'), sf2: await answer('sf2') };
    const load = new LoadGenerator({ urls: [url('sf1'), url('sf2')], concurrency: 2 });
    load.start();
    await waitFor('requests to flow', () => load.snapshot().ok > 20);

    // When an edition whose health check fails is released (short step deadlines)
    const id = await create('bad', ['--batches', '2', '--start-timeout', '3s', '--health-timeout', '10s', '--stop-timeout', '3s']);
    const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 90_000);
    const summary = await load.stop();

    // Then the release failed in its first batch, the instance failed with the old edition still serving
    expect(detail.release?.status).toBe('Release failed');
    const first = detail.batches[0]!.instances[0]!;
    const failed = detail.instances.find((i) => i.instance === first)!;
    expect(failed).toMatchObject({ status: 'failed', moved: 'none', updateOrder: 'start-first' });
    expect(failed.error).toMatch(/edition bad unhealthy after \d+ tries: GET \/healthz answered 500.*old edition still serves/);
    // The old process was never stopped: same pid, still answering 2.0; the bad process ran and was stopped
    const now = await answer(first);
    expect(now).toEqual(before[first as 'sf1' | 'sf2']);
    expect(alive(now.pid)).toBe(true);
    expect(seen('stopped', first, (d) => d.edition === '2.0')).toEqual([]);
    expect(seen('started', first, (d) => d.edition === 'bad' && d.updateOrder === 'start-first')).toHaveLength(1);
    await waitFor('the bad process to be reported stopped', () => seen('stopped', first, (d) => d.edition === 'bad').length === 1);
    // The other instance was never touched (the first-batch rule stopped the release), and no request failed
    const other = AGENTS.find((a) => a !== first)!;
    expect(detail.instances.find((i) => i.instance === other)?.status).toBe('pending');
    expect(summary.failures).toEqual({});
    expect(summary.failed).toBe(0);
  }, 120_000);

  it('falls back to stop-first on a host short of memory, holding (not failing) requests over the restart', async () => {
    // Given the tight agent's instance on 1.0 under load
    const oldPid = (await answer(TIGHT)).pid;
    const load = new LoadGenerator({ urls: [url(TIGHT)], concurrency: 2 });
    load.start();
    await waitFor('requests to flow', () => load.snapshot().ok > 20);

    // When 2.0 is released there (the app asks for start-first)
    const detail = await fleet.adminClient.waitForRelease(await create('2.0', ['--batches', '1'], 'tight'), ['Released', 'Release failed'], 90_000);
    const summary = await load.stop();

    // Then the agent restarted it stop-first, said so, and no request failed
    expect(detail.release?.status, detail.release?.message).toBe('Released');
    expect(detail.instances[0]).toMatchObject({ updateOrder: 'stop-first' });
    expect(seen('started', TIGHT, (d) => d.edition === '2.0' && d.updateOrder === 'stop-first')).toHaveLength(1);
    expect(summary.failures).toEqual({});
    expect(summary.byEdition['2.0']).toBeGreaterThan(0);
    expect(alive(oldPid)).toBe(false);
  }, 120_000);
});
