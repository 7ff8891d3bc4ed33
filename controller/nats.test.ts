// The NATS bridge against a real nats-server (skipped when none is installed): stream, buffering, drained feed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { instanceEvent, INSTANCE_EVENTS, releaseEvent, RELEASE_EVENTS, STREAM_NAME } from '../common/events.js';
import { createLogger } from '../common/logger.js';
import { EventHub } from './event-hub.js';
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
});
