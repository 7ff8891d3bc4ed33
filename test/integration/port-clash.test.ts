// An app's internal port taken by someone else at start: the agent starts it on another port and the release succeeds.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TYPE_PREFIX } from '../../common/events.js';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';

const APP = 'shop';

describe('an internal port taken at start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-port-clash-'));
  const registry = join(dir, 'ports');
  const savedRegistry = process.env.FLEETWAVE_PORT_REGISTRY;
  const fleet = new Fleet(dir);
  const blockers: net.Server[] = [];
  const started: { edition: string; pid: number }[] = [];
  let servicePort = 0;
  let nc: NatsConnection;

  /** The agent's internal port: its one reservation in the host's port registry besides the service port. */
  const internalPort = (): number => {
    const ports = readdirSync(registry).map(Number).filter((p) => p !== servicePort);
    expect(ports).toHaveLength(1);
    return ports[0]!;
  };

  /** Someone else (not fleetwave) listens on `port`. */
  const block = async (port: number): Promise<void> => {
    // It answers nothing: a connection (the gate, a health probe) is closed at once.
    const server = net.createServer((socket) => socket.destroy());
    blockers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
  };

  const release = async (edition: string): Promise<string> => {
    const created = await fleet.cli(['release', 'create', APP, '--edition', edition, '--group', 'all', '--batches', '1', '--drain', '1s']);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim().split(/\s+/).pop()!;
    const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 60_000);
    expect(detail.release?.status, detail.release?.message).toBe('Released');
    return id;
  };

  beforeAll(async () => {
    // Given one agent whose port registry is this test's own, serving an app that listens 1.5 s after it starts
    // and whose start waits for its health check (a start grace long enough to see it exit).
    process.env.FLEETWAVE_PORT_REGISTRY = registry;
    await fleet.startNats();
    nc = await connect({ servers: fleet.nats!.url });
    nc.subscribe(`fleetwave.ingest.${APP}.instance.a1`, {
      callback: (_err, msg) => {
        const event = msg.json<{ type: string; data: { edition: string; pid: number } }>();
        if (event.type === `${TYPE_PREFIX}.instance.started`) started.push(event.data);
      },
    });
    await fleet.startController();
    servicePort = await freePort();
    await fleet.startAgent('a1', 'blue', { [APP]: servicePort });
    await fleet.adminClient.waitForAgents(['a1']);
    // Stop-first: one process, one internal port at a time (a start-first restart reserves a second one beside it).
    const app = await fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=1500', '--start-grace', '30s', '--health-initial-interval', '20ms', '--update-order', 'stop-first']);
    expect(app.code, app.stderr).toBe(0);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      const installed = await fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]);
      expect(installed.code, installed.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    await Promise.all(blockers.map((s) => new Promise((r) => s.close(r))));
    await nc?.close();
    await fleet.stopAll();
    if (savedRegistry === undefined) delete process.env.FLEETWAVE_PORT_REGISTRY;
    else process.env.FLEETWAVE_PORT_REGISTRY = savedRegistry;
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves to another port when the port is found taken just before the spawn', async () => {
    const taken = internalPort();
    await block(taken);
    await release('1.0');
    expect(internalPort()).not.toBe(taken);
    const res = await fetch(`http://127.0.0.1:${servicePort}/`);
    expect(await res.json()).toMatchObject({ edition: '1.0' });
  });

  it('starts the app again on another port when it exits with EADDRINUSE', async () => {
    const before = started.length;
    const creating = release('2.0');
    // When the new edition has been spawned and someone takes its port before it listens
    const spawned = await waitFor('2.0 to be spawned', () => started.slice(before).find((s) => s.edition === '2.0'), 30_000);
    const taken = internalPort();
    await block(taken);
    // Then the release still succeeds: the app was started again, on another port, and serves through the gate
    await creating;
    const starts = started.slice(before).filter((s) => s.edition === '2.0');
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.at(-1)!.pid).not.toBe(spawned.pid);
    expect(internalPort()).not.toBe(taken);
    const res = await fetch(`http://127.0.0.1:${servicePort}/`);
    expect(await res.json()).toMatchObject({ edition: '2.0' });
  });
});
