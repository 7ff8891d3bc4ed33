// The events say what happened, read from a real nats-server while real agents, apps and a controller run:
// a crashed app comes back healthy, failed steps say why, a rollback reports its own steps, an agent
// going away and coming back is announced per instance, and a new release carries its plan.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, repoPath, waitFor } from '../harness/fleet.js';
import { servicePort, START_TIMEOUT_MS } from './model/setup.js';

const APPS = ['crash', 'fail', 'back'];
const AGENTS = [
  { id: 'e1', group: 'blue' },
  { id: 'e2', group: 'blue' },
  { id: 'e3', group: 'green' },
];

interface Seen {
  subject: string;
  type: string;
  source: string;
  data: Record<string, unknown>;
}

describe('events that say what happened', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-events-'));
  const fleet = new Fleet(dir);
  const ports: Record<string, Record<string, number>> = {};
  const events: Seen[] = [];
  let nc: NatsConnection;

  /** Waits for the first event from index `from` on that matches, and returns its index and itself. */
  async function next(what: string, from: number, match: (e: Seen) => boolean, timeoutMs = 30_000): Promise<{ at: number; event: Seen }> {
    return waitFor(what, () => {
      const at = events.findIndex((e, i) => i >= from && match(e));
      return at >= 0 ? { at, event: events[at]! } : undefined;
    }, timeoutMs);
  }

  async function cli(args: string[]): Promise<string> {
    const result = await fleet.cli(args);
    expect(result.code, `fleetwave ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  /** Defines the app and installs its editions; editions in `failing` answer /healthz with 500. */
  async function createApp(app: string, editions: string[], failing: string[] = []): Promise<void> {
    // Stop-first: this suite checks the quiesce ─▶ drain ─▶ restart pipeline (start-first has its own suite).
    await cli(['app', 'create', app, '--start', 'node server.js', '--env', 'START_DELAY_MS=50', '--stop-timeout', '2s', '--update-order', 'stop-first']);
    for (const edition of editions) {
      const source = join(dir, 'src', `${app}-${edition}`);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      if (failing.includes(edition)) writeFileSync(join(source, 'FAIL_HEALTH'), 'drill\n');
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(dir, 'packages'), name: app });
      await cli(['edition', 'install', app, edition, '--file', pkg.path]);
    }
  }

  /** `release create` over every group, one batch per group; returns the id. */
  async function release(app: string, edition: string): Promise<string> {
    const out = await cli(['release', 'create', app, '--edition', edition, '--group', 'all', '--batches', '1', '--drain', '1s', '--health-timeout', '2s']);
    return out.trim().split(/\s+/).pop()!;
  }

  async function settle(id: string, status: string) {
    const detail = await fleet.adminClient.waitForRelease(id, [status, 'Released', 'Release failed', 'Rolled back', 'Rollback failed']);
    expect(detail.release?.status, detail.release?.message).toBe(status);
    // The events of the release come before its last status change on the controller's one connection: once that
    // change is here, so are they.
    await next(`${id} ${status} on NATS`, 0, (e) => e.type === 'io.fleetwave.release.status.changed' && e.data.release === id && e.data.to === status);
    return detail;
  }

  const stepEvents = (id: string) => events.filter((e) => e.type === 'io.fleetwave.release.instance.step' && e.data.release === id);

  beforeAll(async () => {
    // Given a controller with a short heartbeat timeout and three agents serving three apps
    await fleet.startNats();
    nc = await connect({ servers: fleet.nats!.url });
    nc.subscribe('fleetwave.events.>', {
      callback: (_err, msg) => {
        const event = msg.json<{ type: string; source: string; data: Record<string, unknown> }>();
        events.push({ subject: msg.subject, type: event.type, source: event.source, data: event.data });
      },
    });
    await fleet.startController(['--heartbeat-timeout', '2s']);
    for (const agent of AGENTS) {
      ports[agent.id] = {};
      for (const app of APPS) ports[agent.id]![app] = await servicePort();
      await fleet.startAgent(agent.id, agent.group, ports[agent.id]!);
    }
    await fleet.adminClient.waitForAgents(AGENTS.map((a) => a.id), 90_000);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    for (const agent of fleet.agents) agent.proc.child.kill('SIGCONT');
    await nc?.close();
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows an automatic restart after a crash with started, then healthy', async () => {
    await createApp('crash', ['1.0']);
    await settle(await release('crash', '1.0'), 'Released');
    const subject = 'fleetwave.events.crash.instance.e1';
    const { event: running } = await next('the app started on e1', 0, (e) => e.subject === subject && e.type === 'io.fleetwave.instance.started');

    // When the app's process is killed behind the agent's back
    const mark = events.length;
    process.kill(running.data.pid as number, 'SIGKILL');

    // Then the agent says it crashed, started it again, and that it is healthy again
    const stopped = await next('stopped', mark, (e) => e.subject === subject && e.type === 'io.fleetwave.instance.stopped');
    expect(stopped.event.data).toMatchObject({ expected: false, signal: 'SIGKILL', error: 'app crash was killed by SIGKILL' });
    const started = await next('started again', stopped.at, (e) => e.subject === subject && e.type === 'io.fleetwave.instance.started');
    expect(started.event.data).toMatchObject({ edition: '1.0', trigger: 'crash-restart' });
    expect(started.event.data.pid).not.toBe(running.data.pid);
    const healthy = await next('healthy after the restart', started.at, (e) => e.subject === subject && e.type === 'io.fleetwave.instance.healthy');
    expect(healthy.event.data).toMatchObject({ edition: '1.0', trigger: 'crash-restart' });
    expect(healthy.event.data.tries).toBeGreaterThanOrEqual(1);
    expect(events.slice(mark).some((e) => e.subject === subject && e.type === 'io.fleetwave.instance.unhealthy')).toBe(false);
  });

  it('gives every failed step event the failure in one line, and the events after it too', async () => {
    await createApp('fail', ['1.0', 'bad'], ['bad']);
    await settle(await release('fail', '1.0'), 'Released');

    // When a release of an edition that fails its health check reverts its first batch
    const id = await release('fail', 'bad');
    await settle(id, 'Release failed');

    // Then every event of a failed step or a failed instance says why, in one line
    const steps = stepEvents(id);
    const failures = steps.filter((e) => e.data.stepStatus === 'failed' || e.data.status === 'failed' || e.data.status === 'unreachable');
    expect(failures.length).toBeGreaterThan(0);
    for (const e of failures) {
      expect(e.data.error, JSON.stringify(e.data)).toMatch(/\S/);
      expect(String(e.data.error)).not.toContain('\n');
    }
    // The move to failed is the outcome of a failed health step
    const failedMove = steps.find((e) => e.data.status === 'failed');
    expect(failedMove?.data).toMatchObject({ step: 'health', stepStatus: 'failed', error: expect.stringMatching(/^health: \S/) });
    // The reverting steps of a failed instance carry its failure; they are told apart by their phase
    const revert = steps.filter((e) => e.data.phase === 'revert');
    expect(revert.length).toBeGreaterThan(0);
    // And the agent's own unhealthy event says why as well
    const { event: unhealthy } = await next('the unhealthy event', 0, (e) => e.type === 'io.fleetwave.instance.unhealthy' && e.subject.startsWith('fleetwave.events.fail.'));
    expect(unhealthy.data).toMatchObject({ edition: 'bad', trigger: 'command', error: expect.stringMatching(/answered 500/) });
  });

  it('reports a rollback as rolling back, with its own steps, in the events and the release detail', async () => {
    await createApp('back', ['1.0', '2.0']);
    await settle(await release('back', '1.0'), 'Released');
    const id = await release('back', '2.0');
    await settle(id, 'Released');

    // When the operator rolls the release back
    await cli(['release', 'rollback', id]);
    const detail = await settle(id, 'Rolled back');

    // Then no instance reports `released` while it goes back: it is rolling back, then rolled back
    const rollingBack = events.findIndex((e) => e.type === 'io.fleetwave.release.status.changed' && e.data.release === id && e.data.to === 'Rolling back');
    expect(rollingBack).toBeGreaterThan(0);
    const during = stepEvents(id).filter((e) => events.indexOf(e) > rollingBack);
    expect(during.filter((e) => e.data.status === 'released')).toEqual([]);
    for (const agent of AGENTS) {
      const mine = during.filter((e) => e.data.instance === agent.id);
      expect(mine.map((e) => e.data.status)).toContain('rolling back');
      expect(mine.at(-1)?.data).toMatchObject({ status: 'rolled back', phase: 'rollback', error: 'back on 1.0' });
      const rollbackSteps = mine.filter((e) => e.data.stepStatus === 'running').map((e) => e.data.step);
      expect(rollbackSteps).toEqual(['quiesce', 'drain', 'restart', 'health']);
      expect(mine.filter((e) => e.data.step !== '').every((e) => e.data.phase === 'rollback')).toBe(true);
    }
    // And the release detail lists each step with the pipeline it ran in
    for (const instance of detail.instances) {
      expect(instance.status).toBe('rolled back');
      expect(instance.steps.filter((s) => s.phase === 'rollback').map((s) => s.step)).toEqual(['quiesce', 'drain', 'restart', 'health']);
      expect(instance.steps.filter((s) => s.phase === 'upgrade').map((s) => s.step)).toEqual(['quiesce', 'drain', 'restart', 'health']);
    }
  });

  it('announces a new release with its planned batches before anything moves', async () => {
    const id = await release('back', '2.0');
    const detail = await settle(id, 'Released');
    const ofRelease = events.filter((e) => e.subject === `fleetwave.events.back.release.${id}`);
    expect(ofRelease[0]).toMatchObject({ type: 'io.fleetwave.release.created', source: 'fleetwave/controller' });
    expect(ofRelease[0]!.data).toMatchObject({ edition: '2.0', group: 'all', status: 'To release' });
    expect(ofRelease[0]!.data.batches).toEqual(detail.batches.map((b) => ({ batch: b.number, group: b.group, instances: b.instances })));
    expect(ofRelease[0]!.data.batches).toEqual([
      { batch: 1, group: 'blue', instances: ['e1', 'e2'] },
      { batch: 2, group: 'green', instances: ['e3'] },
    ]);
  });

  it('announces an agent that stops answering, and its return, on each of its instances', async () => {
    const e3 = fleet.agents.find((a) => a.id === 'e3')!;
    const isFrom = (agent: string, type: string) => (e: Seen) => e.type === type && e.subject.endsWith(`.instance.${agent}`);

    // When an agent freezes (its stream stays open, its heartbeats stop)
    let mark = events.length;
    e3.proc.child.kill('SIGSTOP');
    const { at } = await next('e3 unreachable', mark, isFrom('e3', 'io.fleetwave.instance.unreachable'), 15_000);
    // One event per instance, published one after the other: wait for all of them before looking
    const lost = await waitFor('e3 unreachable on each of its instances', () => {
      const seen = events.slice(at).filter(isFrom('e3', 'io.fleetwave.instance.unreachable'));
      return seen.length >= APPS.length ? seen : undefined;
    }, 15_000);
    e3.proc.child.kill('SIGCONT');
    expect(lost.map((e) => e.subject).sort()).toEqual(APPS.map((app) => `fleetwave.events.${app}.instance.e3`).sort());
    for (const e of lost) {
      expect(e.source).toBe('fleetwave/controller');
      expect(e.data).toMatchObject({ reason: 'heartbeat timeout', expected: false, instance: 'e3' });
      expect(Date.parse(String(e.data.lastSeen))).toBeLessThan(Date.now());
    }
    // Then, thawed, it reconnects and is reachable again
    await next('e3 reachable', at, isFrom('e3', 'io.fleetwave.instance.reachable'), 30_000);

    // When an agent dies, its stream closes at once
    mark = events.length;
    const e2 = fleet.agents.find((a) => a.id === 'e2')!;
    await e2.kill();
    const closed = await next('e2 unreachable', mark, isFrom('e2', 'io.fleetwave.instance.unreachable'), 15_000);
    expect(closed.event.data).toMatchObject({ reason: 'stream closed', instance: 'e2' });
    expect(closed.event.source).toBe('fleetwave/controller');
    await fleet.startAgent('e2', 'blue', ports.e2!);
    const back = await next('e2 reachable', closed.at, isFrom('e2', 'io.fleetwave.instance.reachable'), 30_000);
    expect(back.event.data).toMatchObject({ reason: 'reconnected', instance: 'e2' });
  });
});
