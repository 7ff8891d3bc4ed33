// End to end: real nats-server, controller, agents and app processes; a phased release under load.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCommandJournal } from '../../agent/command-journal.js';
import { EVENT_TYPES } from '../../common/events.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { buildEdition } from '../../examples/demo/package.js';
import { LoadGenerator } from '../../examples/demo/load.js';

const APP = 'shop';
const AGENTS = [
  { id: 'a1', group: 'blue' },
  { id: 'a2', group: 'blue' },
  { id: 'a3', group: 'green' },
  { id: 'a4', group: 'green' },
];

describe('a phased release through real agents', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-release-'));
  const fleet = new Fleet(dir);
  const ports: Record<string, number> = {};
  const events: { subject: string; type: string; data: Record<string, unknown> }[] = [];
  let nc: NatsConnection;

  beforeAll(async () => {
    // Given a controller, a nats-server and four agents in two groups, each serving the sample app
    await fleet.startNats();
    nc = await connect({ servers: fleet.nats!.url });
    nc.subscribe('fleetwave.events.>', {
      callback: (_err, msg) => {
        const event = msg.json<{ type: string; data: Record<string, unknown> }>();
        events.push({ subject: msg.subject, type: event.type, data: event.data });
      },
    });
    await fleet.startController(['--heartbeat-timeout', '3s']);
    for (const agent of AGENTS) {
      ports[agent.id] = await freePort();
      await fleet.startAgent(agent.id, agent.group, { [APP]: ports[agent.id] });
    }
    await fleet.adminClient.waitForAgents(AGENTS.map((a) => a.id));

    // Stop-first: this suite checks the quiesce ─▶ drain ─▶ restart pipeline (start-first has its own suite).
    const app = await fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=200', '--update-order', 'stop-first']);
    expect(app.stderr).toBe('');
    expect(app.code).toBe(0);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      const installed = await fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]);
      expect(installed.stderr).toBe('');
      expect(installed.code).toBe(0);
    }
  });

  afterAll(async () => {
    await nc?.close();
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploys a first edition to instances that run none', async () => {
    const created = await fleet.cli(['release', 'create', APP, '--edition', '1.0', '--group', 'all', '--batches', '1', '--drain', '1s']);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim().split(/\s+/).pop()!;
    const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed']);
    expect(detail.release?.status).toBe('Released');
    for (const agent of AGENTS) {
      const res = await fetch(`http://127.0.0.1:${ports[agent.id]}/`);
      expect(await res.json()).toMatchObject({ edition: '1.0' });
    }
  });

  it('rolls 2.0 out batch by batch under load without failing a request', async () => {
    // Given load on every instance through the agents' traffic gates
    const load = new LoadGenerator({ urls: AGENTS.map((a) => `http://127.0.0.1:${ports[a.id]}/`), concurrency: 2 });
    load.start();
    await waitFor('requests to flow', () => load.snapshot().ok > 50);

    // When a rolling release to 2.0 runs with 2 batches per group, soft reset and a drain
    const created = await fleet.cli([
      'release', 'create', APP, '--edition', '2.0', '--group', 'all', '--batches', '2',
      '--batch-mode', 'auto', '--wait', '200ms', '--reset', 'soft', '--drain', '5s',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim().split(/\s+/).pop()!;
    const watch = await fleet.cli(['release', 'watch', id]);
    const summary = await load.stop();

    // Then the release is Released, every instance serves 2.0 and no request failed
    expect(watch.code, watch.stdout + watch.stderr).toBe(0);
    const detail = await fleet.adminClient.release(id);
    expect(detail.release?.status).toBe('Released');
    expect(detail.batches.map((b) => `${b.group}:${b.instances.length}`)).toEqual(['blue:1', 'blue:1', 'green:1', 'green:1']);
    expect(detail.instances.every((i) => i.status === 'released' && i.edition === '2.0')).toBe(true);
    const instances = await fleet.adminClient.instances(APP);
    expect(instances.map((i) => i.edition)).toEqual(['2.0', '2.0', '2.0', '2.0']);
    expect(summary.failed).toBe(0);
    expect(summary.ok).toBeGreaterThan(100);

    // Drains ended on the agents' `drained` events, well before the 5 s interval
    const drained = events.filter((e) => e.type === 'io.fleetwave.instance.drained');
    expect(drained.length).toBeGreaterThanOrEqual(4);
    const releaseEvents = events.filter((e) => e.subject.startsWith(`fleetwave.events.${APP}.release.${id}`));
    expect(releaseEvents.some((e) => e.type === 'io.fleetwave.release.status.changed' && e.data.to === 'Released')).toBe(true);
  });

  it('emits only event types that docs/events.md documents', () => {
    const doc = readFileSync(repoPath('docs/events.md'), 'utf8');
    const seen = new Set(events.map((e) => e.type));
    expect(seen.size).toBeGreaterThan(5);
    for (const type of seen) {
      expect(EVENT_TYPES, `${type} is not in common/events.ts`).toContain(type);
      expect(doc, `${type} is not documented`).toContain(`\`${type}\``);
    }
  });

  it('ran no command twice on any agent', () => {
    for (const agent of AGENTS) {
      const journal = readCommandJournal(join(dir, 'agents', agent.id));
      const entries = Object.entries(journal) as [string, { kind: string; runs: number; result?: unknown }][];
      expect(entries.length).toBeGreaterThan(0);
      expect(entries.filter(([, e]) => e.runs !== 1 || !e.result)).toEqual([]);
    }
  });

  it('shows a lost agent as unreachable within the heartbeat timeout', async () => {
    const lost = fleet.agents.find((a) => a.id === 'a4')!;
    await lost.kill();
    const started = Date.now();
    await waitFor('a4 to be unreachable', async () => {
      const agents = await fleet.adminClient.agents();
      return agents.find((a) => a.id === 'a4')?.status === 'unreachable';
    }, 10_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    const listed = await fleet.cli(['agent', 'list', '--output', 'json']);
    const agents = JSON.parse(listed.stdout) as { id: string; status: string }[];
    expect(agents.find((a) => a.id === 'a4')?.status).toBe('unreachable');
    expect(agents.find((a) => a.id === 'a1')?.status).toBe('connected');

    // And it is back, on its edition, once it restarts
    await fleet.startAgent('a4', 'green', { [APP]: ports.a4 });
    await fleet.adminClient.waitForAgents(['a4']);
    const res = await waitFor('a4 to serve again', async () => (await fetch(`http://127.0.0.1:${ports.a4}/`)).ok && true);
    expect(res).toBe(true);
    const a4 = (await fleet.adminClient.instances(APP)).find((i) => i.instance === 'a4');
    expect(a4).toMatchObject({ edition: '2.0', status: 'running' });
  });
});
