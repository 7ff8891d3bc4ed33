// End to end behind the edition router: real nats-server, controller, agents, apps, `fleetwave router` and the
// haproxy it starts; every request of the load goes through haproxy's frontend.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { LoadGenerator, oldAfterFirstNew, type LoadSummary, type RecordedRequest } from '../../examples/demo/load.js';
import { RuntimeApi, parseStatCsv } from '../../router/runtime.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { alive, editionsOf, HAS_HAPROXY, startRouter, stopRouter, type RouterProc } from '../harness/router.js';

const APP = 'shop';
const AGENTS = [
  { id: 'a1', group: 'blue' },
  { id: 'a2', group: 'blue' },
  { id: 'a3', group: 'green' },
  { id: 'a4', group: 'green' },
];

/** One sample of haproxy's per-server counters: backend/server → [status, sessions]. */
type Sample = Map<string, [string, number]>;

/** Polls `show stat` while a release runs, to check afterwards that no drained server got a new request. */
class StatWatch {
  readonly samples: Sample[] = [];
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  constructor(private readonly api: RuntimeApi) {}

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        const sample: Sample = new Map();
        try {
          for (const row of parseStatCsv(await this.api.one('show stat'))) {
            if (!row.pxname?.startsWith(`fw_${APP}_`) || row.svname === 'BACKEND' || row.svname === 'FRONTEND') continue;
            sample.set(`${row.pxname}/${row.svname}`, [String(row.status), Number(row.stot)]);
          }
          this.samples.push(sample);
        } catch {
          // haproxy is always up in these tests; a refused read just skips a sample.
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Servers seen DRAIN in two samples in a row whose session count grew in between (should be none), and how many drains were seen. */
  verdict(): { grewWhileDrained: string[]; drainsSeen: number } {
    const grew = new Set<string>();
    const drained = new Set<string>();
    for (let i = 1; i < this.samples.length; i++) {
      for (const [server, [status, stot]] of this.samples[i]!) {
        const before = this.samples[i - 1]!.get(server);
        if (!status.startsWith('DRAIN') || !before || !before[0].startsWith('DRAIN')) continue;
        drained.add(server);
        if (stot > before[1]) grew.add(`${server} ${before[1]}→${stot}`);
      }
    }
    return { grewWhileDrained: [...grew], drainsSeen: drained.size };
  }
}

describe.skipIf(!HAS_HAPROXY)('releases behind the edition router (real haproxy)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-router-release-'));
  const runDir = join(dir, 'router');
  const fleet = new Fleet(dir);
  let frontPort = 0;
  let router: RouterProc | undefined;
  let api: RuntimeApi;
  const url = () => `http://127.0.0.1:${frontPort}/`;

  const startTheRouter = async () => {
    router = await startRouter({ runDir, apps: { [APP]: frontPort }, controller: fleet.controller!.grpcAddress, natsUrl: fleet.nats!.url, id: 'r1', logFile: join(dir, 'router.log') });
  };

  /** Creates and starts a release; resolves to its id. */
  const release = async (args: string[]): Promise<string> => {
    const created = await fleet.cli(['release', 'create', APP, ...args]);
    expect(created.code, created.stderr).toBe(0);
    return created.stdout.trim().split('\n')[0]!;
  };

  /** Load through the router while `during` runs; the summary and every request. */
  const underLoad = async (during: () => Promise<void>, headers?: Record<string, string>): Promise<{ summary: LoadSummary; requests: readonly RecordedRequest[] }> => {
    // Clients that give up after 2 s, as real ones do: a request held longer is lost.
    const load = new LoadGenerator({ urls: [url()], concurrency: 8, requestTimeoutMs: 2_000, record: true, headers });
    load.start();
    let summary: LoadSummary | undefined;
    try {
      await during();
    } finally {
      summary = await load.stop();
    }
    return { summary, requests: load.requests() };
  };

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController(['--heartbeat-timeout', '3s']);
    for (const agent of AGENTS) await fleet.startAgent(agent.id, agent.group, { [APP]: await freePort() });
    await fleet.adminClient.waitForAgents(AGENTS.map((a) => a.id));
    // Stop-first: each instance quiesces, so the router's drain is what keeps requests off it.
    const app = await fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=200', '--update-order', 'stop-first']);
    expect(app.code, app.stderr).toBe(0);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      const installed = await fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]);
      expect(installed.code, installed.stderr).toBe(0);
    }
    const first = await release(['--edition', '1.0', '--batches', '1']);
    await fleet.adminClient.waitForRelease(first, ['Released']);
    frontPort = await freePort();
    await startTheRouter();
    api = new RuntimeApi(join(runDir, 'haproxy.sock'));
    await waitFor('the router to serve 1.0 from every instance', async () => {
      const counts = await editionsOf(frontPort, 8);
      return counts['1.0'] === 8;
    }, 30_000);
  }, 180_000);

  afterAll(async () => {
    await stopRouter(router, runDir);
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a rolling release under load loses nothing, and haproxy sends a drained server no new request', async () => {
    // Given load through the router and haproxy's counters sampled every 20 ms
    const stats = new StatWatch(api);
    stats.start();
    // When 2.0 rolls out in two batches
    const { summary } = await underLoad(async () => {
      const id = await release(['--edition', '2.0', '--group', 'all', '--batches', '2', '--drain', '5s']);
      await fleet.adminClient.waitForRelease(id, ['Released'], 90_000);
    });
    await stats.stop();
    // Then no request failed, every instance was drained at the router, and no drained server took a new request
    expect(summary.failed, JSON.stringify(summary.failures)).toBe(0);
    expect(summary.byEdition['2.0']).toBeGreaterThan(0);
    const verdict = stats.verdict();
    expect(verdict.grewWhileDrained).toEqual([]);
    expect(verdict.drainsSeen).toBeGreaterThanOrEqual(AGENTS.length);
    expect(await editionsOf(frontPort, 8)).toEqual({ '2.0': 8 });
  }, 150_000);

  it('an atomic release: no request that starts after the first new answer gets the old edition, none lost', async () => {
    // When 1.0 goes out atomically (two halves, the routers switch between them) under recorded load
    const { summary, requests } = await underLoad(async () => {
      const id = await release(['--edition', '1.0', '--group', 'all', '--strategy', 'atomic', '--drain', '5s']);
      const done = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 90_000);
      expect(done.release?.status, done.release?.message).toBe('Released');
      expect(done.release?.routePhase).toBe('switched');
    });
    // Then both editions answered (old before the switch, new after), nothing failed, and the order is consistent
    expect(summary.failed, JSON.stringify(summary.failures)).toBe(0);
    expect(summary.byEdition['2.0']).toBeGreaterThan(0);
    expect(summary.byEdition['1.0']).toBeGreaterThan(0);
    expect(oldAfterFirstNew(requests, '1.0')).toEqual([]);
  }, 150_000);

  it('concurrent editions: a release to one group keeps the default, and a header rule sends its users to the other edition', async () => {
    // Given 2.0 on group blue only (green keeps 1.0, the default)
    const id = await release(['--edition', '2.0', '--group', 'blue', '--batches', '1']);
    await fleet.adminClient.waitForRelease(id, ['Released'], 90_000);
    await waitFor('default traffic on 1.0 only', async () => (await editionsOf(frontPort, 10))['1.0'] === 10, 10_000);
    // When an operator adds a header rule for 2.0
    const added = await fleet.cli(['route', 'add', APP, '--edition', '2.0', '--header', 'X-Beta=1', '--comment', 'beta users']);
    expect(added.code, added.stderr).toBe(0);
    // Then users with the header get 2.0, the others 1.0
    await waitFor('the rule to reach haproxy', async () => (await editionsOf(frontPort, 10, '/', { 'X-Beta': '1' }))['2.0'] === 10, 10_000);
    expect(await editionsOf(frontPort, 50, '/', { 'X-Beta': '1' })).toEqual({ '2.0': 50 });
    expect(await editionsOf(frontPort, 50)).toEqual({ '1.0': 50 });
    // And a rule naming an edition that does not exist is refused with one line, nothing changed
    const bad = await fleet.cli(['route', 'add', APP, '--edition', '9.9', '--header', 'X-Beta=2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const listed = await fleet.cli(['route', 'list', APP]);
    expect(listed.stdout).toContain('X-Beta');
    expect(listed.stdout).not.toContain('9.9');
    // And a second router beside its own haproxy (routers hold no state) routes the same way at once
    const secondDir = join(dir, 'router-2');
    const secondPort = await freePort();
    const second = await startRouter({ runDir: secondDir, apps: { [APP]: secondPort }, controller: fleet.controller!.grpcAddress, natsUrl: fleet.nats!.url, id: 'r2', logFile: join(dir, 'router-2.log') });
    try {
      await waitFor('the second router to route by the rule', async () => (await editionsOf(secondPort, 10, '/', { 'X-Beta': '1' }))['2.0'] === 10, 15_000);
      expect(await editionsOf(secondPort, 20)).toEqual({ '1.0': 20 });
    } finally {
      await stopRouter(second, secondDir);
    }
    // When the rule is removed, everyone is back on the default edition
    const ruleId = listed.stdout.split('\n').find((l) => l.includes('X-Beta'))!.trim().split(/\s+/)[0]!;
    const removed = await fleet.cli(['route', 'remove', APP, ruleId]);
    expect(removed.code, removed.stderr).toBe(0);
    await waitFor('the rule to leave haproxy', async () => (await editionsOf(frontPort, 10, '/', { 'X-Beta': '1' }))['1.0'] === 10, 10_000);
  }, 150_000);

  it('a router killed and a controller killed mid-release: traffic keeps flowing, both resync', async () => {
    const haproxyPid = Number((await api.one('show info')).match(/^Pid: (\d+)/m)?.[1]);
    expect(haproxyPid).toBeGreaterThan(0);
    // When blue goes back to 1.0 in two batches under load, the router is SIGKILLed and restarted, then the controller
    const { summary } = await underLoad(async () => {
      const id = await release(['--edition', '1.0', '--group', 'blue', '--batches', '2', '--drain', '5s']);
      await waitFor('batch 1 to run', async () => (await fleet.adminClient.release(id)).release!.currentBatch >= 1, 30_000);
      await router!.proc.kill();
      await startTheRouter();
      await fleet.controller!.kill();
      await fleet.startController(['--heartbeat-timeout', '3s']);
      await fleet.adminClient.waitForAgents(AGENTS.map((a) => a.id), 30_000);
      await fleet.adminClient.waitForRelease(id, ['Released'], 90_000);
    });
    // Then nothing was lost, haproxy is the same process, and the router routes by the final state
    expect(summary.failed, JSON.stringify(summary.failures)).toBe(0);
    expect(alive(haproxyPid)).toBe(true);
    expect((await api.one('show info')).match(/^Pid: (\d+)/m)?.[1]).toBe(String(haproxyPid));
    await waitFor('default traffic on 1.0 (every group runs it)', async () => (await editionsOf(frontPort, 10))['1.0'] === 10, 15_000);
  }, 200_000);
});
