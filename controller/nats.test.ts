// The NATS bridge against a real nats-server (skipped when none is installed): stream, buffering, ingest validation, drained feed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { agentSource, CONTROLLER_SOURCE, INGEST_STREAM_NAME, ingestSubject, instanceEvent, INSTANCE_EVENTS, instanceSubject, releaseEvent, RELEASE_EVENTS, STREAM_NAME } from '../common/events.js';
import { createLogger } from '../common/logger.js';
import { EventHub } from './event-hub.js';
import { validateIngest } from './event-validation.js';
import { NatsBridge } from './nats.js';
import { freePort } from '../agent/ports.js';
import { HAS_NATS_SERVER as hasNats, startNats as launchNats, type Nats } from '../test/harness/nats.js';
import { waitFor as until } from '../test/harness/wait.js';

const logger = createLogger({ name: 'nats-test', level: 'silent' });

let server: Nats | undefined;
let bridge: NatsBridge | undefined;
let dir: string | undefined;

async function startNats(port: number): Promise<void> {
  dir ??= mkdtempSync(join(tmpdir(), 'fleetwave-nats-'));
  server = await launchNats(dir, undefined, undefined, port);
}

afterEach(async () => {
  await bridge?.stop();
  bridge = undefined;
  await server?.stop();
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
    const rejected: string[] = [];
    bridge = new NatsBridge({
      url: `nats://127.0.0.1:${port}`,
      logger,
      hub,
      onDrained: (app, instance) => drained.push(`${app}/${instance}`),
      // h1 is a known agent without a key (insecure mode), h2 is not known.
      validate: (m) => validateIngest(m, { requireSignature: false, agentKey: (id) => (id === 'h1' ? '' : undefined) }),
      onRejected: (reason) => rejected.push(reason),
    });
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

      // Agents' events are kept once the bridge made its ingest queue (in the background, after connecting).
      await until('the ingest queue read by the bridge', async () => (await jsm.consumers.info(INGEST_STREAM_NAME, 'fleetwave-controller').catch(() => undefined)) !== undefined);
      const stranger = instanceEvent(agentSource('h2'), 'shop', 'h2', INSTANCE_EVENTS.drained, { in_flight: 0 });
      nc.publish(ingestSubject('shop', 'h2'), JSON.stringify(stranger.event));
      const { event } = instanceEvent(agentSource('h1'), 'shop', 'h1', INSTANCE_EVENTS.drained, { in_flight: 0 });
      nc.publish(ingestSubject('shop', 'h1'), JSON.stringify(event));
      await until('drained fed to the engine', () => drained.length === 1);
      expect(drained).toEqual(['shop/h1']);
      expect(rejected).toEqual(['unknown_agent']);
      expect(seen).toContain('io.fleetwave.instance.drained');
      // Republished on the instance subject, kept by the stream; the ingest subject is not in it.
      await until('the drained event kept by the stream', async () => (await jsm.streams.info(STREAM_NAME)).state.messages >= 2);
      const kept = await jsm.streams.getMessage(STREAM_NAME, { last_by_subj: instanceSubject('shop', 'h1') });
      expect(kept.json<{ id: string }>().id).toBe(event.id);
      expect((await jsm.streams.info(STREAM_NAME)).state.messages).toBe(2);
    } finally {
      await nc.close();
    }
  });

  it('hands its own instance events (unreachable, reachable) to the hub once, and refuses them from an agent', async () => {
    const port = await freePort();
    await startNats(port);
    const hub = new EventHub();
    const seen: string[] = [];
    const rejected: string[] = [];
    hub.subscribe((_subject, event) => seen.push(event.type));
    let drained = 0;
    bridge = new NatsBridge({
      url: `nats://127.0.0.1:${port}`,
      logger,
      hub,
      onDrained: () => drained++,
      onRejected: (reason) => rejected.push(reason),
      validate: (m) => validateIngest(m, { requireSignature: false, agentKey: (id) => (id === 'h1' || id === 'h2' ? '' : undefined) }),
    });
    bridge.start();
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    try {
      // The bridge reads the ingest subjects once connected: an agent's `drained` reaching it says it listens.
      await until('the bridge reads ingest', () => {
        const probe = instanceEvent('fleetwave/agent/h1', 'shop', 'h1', INSTANCE_EVENTS.drained, { inFlight: 0 });
        nc.publish(ingestSubject('shop', 'h1'), JSON.stringify(probe.event));
        return drained > 0;
      });
      const reached = nc.subscribe(instanceSubject('shop', 'h2'), { max: 1 });
      await nc.flush();
      const lost = instanceEvent(CONTROLLER_SOURCE, 'shop', 'h2', INSTANCE_EVENTS.unreachable, { reason: 'heartbeat timeout' });
      bridge.publish(lost.subject, lost.event);
      for await (const _ of reached) break;
      // An agent claiming its own instance unreachable is not believed: only the controller says so.
      const forged = instanceEvent(agentSource('h2'), 'shop', 'h2', INSTANCE_EVENTS.unreachable, { reason: 'heartbeat timeout' });
      nc.publish(ingestSubject('shop', 'h2'), JSON.stringify(forged.event));
      // An agent's event published after that one is read after it.
      const started = instanceEvent(agentSource('h2'), 'shop', 'h2', INSTANCE_EVENTS.started, { edition: '1.0' });
      nc.publish(ingestSubject('shop', 'h2'), JSON.stringify(started.event));
      await until('the agent event in the hub', () => seen.includes('io.fleetwave.instance.started'));
      expect(seen.filter((t) => t === 'io.fleetwave.instance.unreachable')).toHaveLength(1);
      expect(rejected).toContain('unknown_type');
    } finally {
      await nc.close();
    }
  });
});
