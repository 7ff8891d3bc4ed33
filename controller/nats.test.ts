// The NATS bridge against a real nats-server (skipped when none is installed): stream, buffering, drained feed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { CONTROLLER_SOURCE, instanceEvent, INSTANCE_EVENTS, releaseEvent, RELEASE_EVENTS, STREAM_NAME } from '../common/events.js';
import { createLogger } from '../common/logger.js';
import { EventHub } from './event-hub.js';
import { NatsBridge } from './nats.js';

const hasNats = spawnSync('nats-server', ['--version']).status === 0;
const logger = createLogger({ name: 'nats-test', level: 'silent' });

let server: ChildProcess | undefined;
let bridge: NatsBridge | undefined;
let dir: string | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startNats(port: number): Promise<void> {
  dir ??= mkdtempSync(join(tmpdir(), 'fleetwave-nats-'));
  server = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  await until('nats-server up', async () => {
    try {
      const nc = await connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false });
      await nc.close();
      return true;
    } catch {
      return false;
    }
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

afterEach(async () => {
  await bridge?.stop();
  bridge = undefined;
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe.skipIf(!hasNats)('NatsBridge', () => {
  it('buffers while NATS is away, then creates the stream, flushes, and feeds drained events', async () => {
    const port = await freePort();
    const hub = new EventHub();
    const seen: string[] = [];
    hub.subscribe((_subject, event) => seen.push(event.type));
    const drained: string[] = [];
    bridge = new NatsBridge({ url: `nats://127.0.0.1:${port}`, logger, hub, onDrained: (app, instance) => drained.push(`${app}/${instance}`) });
    bridge.start();
    const early = releaseEvent('test', 'shop', 'r-1', RELEASE_EVENTS.statusChanged, { from: 'To release', to: 'Releasing' });
    bridge.publish(early.subject, early.event);
    expect(seen).toEqual(['io.fleetwave.release.status.changed']);

    await startNats(port);
    await until('the bridge connected', () => bridge!.connected);
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    try {
      const jsm = await nc.jetstreamManager();
      await until('the buffered event kept by the stream', async () => (await jsm.streams.info(STREAM_NAME)).state.messages >= 1);
      const stored = await jsm.streams.getMessage(STREAM_NAME, { seq: 1 });
      expect(stored.json<{ id: string }>().id).toBe(early.event.id);

      const { subject, event } = instanceEvent('agent-h1', 'shop', 'h1', INSTANCE_EVENTS.drained, { in_flight: 0 });
      nc.publish(subject, JSON.stringify(event));
      await until('drained fed to the engine', () => drained.length === 1);
      expect(drained).toEqual(['shop/h1']);
      expect(seen).toContain('io.fleetwave.instance.drained');
    } finally {
      await nc.close();
    }
  });

  it('hands its own instance events (unreachable, reachable) to the hub once, and none that others publish', async () => {
    const port = await freePort();
    await startNats(port);
    const hub = new EventHub();
    const seen: string[] = [];
    hub.subscribe((_subject, event) => seen.push(event.type));
    let drained = 0;
    bridge = new NatsBridge({ url: `nats://127.0.0.1:${port}`, logger, hub, onDrained: () => drained++ });
    bridge.start();
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    try {
      // The bridge subscribes once connected: an agent's `drained` reaching it says it listens.
      await until('the bridge subscribed', () => {
        const probe = instanceEvent('fleetwave/agent/h1', 'shop', 'h1', INSTANCE_EVENTS.drained, { inFlight: 0 });
        nc.publish(probe.subject, JSON.stringify(probe.event));
        return drained > 0;
      });
      const reached = nc.subscribe('fleetwave.events.shop.instance.h2', { max: 1 });
      await nc.flush();
      const lost = instanceEvent(CONTROLLER_SOURCE, 'shop', 'h2', INSTANCE_EVENTS.unreachable, { reason: 'heartbeat timeout' });
      bridge.publish(lost.subject, lost.event);
      for await (const _ of reached) break;
      // An agent claiming an instance unreachable is not believed.
      const forged = instanceEvent('fleetwave/agent/h1', 'shop', 'h2', INSTANCE_EVENTS.unreachable, { reason: 'heartbeat timeout' });
      nc.publish(forged.subject, JSON.stringify(forged.event));
      // An agent's event published after those arrives after any echo of them.
      const started = instanceEvent('fleetwave/agent/h2', 'shop', 'h2', INSTANCE_EVENTS.started, { edition: '1.0' });
      nc.publish(started.subject, JSON.stringify(started.event));
      await until('the agent event in the hub', () => seen.includes('io.fleetwave.instance.started'));
      expect(seen.filter((t) => t === 'io.fleetwave.instance.unreachable')).toHaveLength(1);
    } finally {
      await nc.close();
    }
  });
});
