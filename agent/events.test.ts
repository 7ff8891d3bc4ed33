// The event publisher against a real nats-server: CloudEvents on instance subjects, buffered while NATS is down at start.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { instanceSubject } from '../common/events.js';
import { createLogger } from '../common/logger.js';
import { EventPublisher } from './events.js';
import { freePort } from './ports.js';
import { startNats } from '../test/harness/nats.js';
import { tempDir, waitFor } from './test-support.js';

const logger = createLogger({ name: 'events-test', level: 'silent' });
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The shared launcher on a given port (the publisher was pointed at it before it listened); removed after the test. */
async function natsServer(port: number): Promise<void> {
  const dir = tempDir('events-nats');
  const nats = await startNats(dir.path, undefined, undefined, port);
  cleanups.push(async () => {
    await nats.kill();
    dir.remove();
  });
}

async function subscribe(port: number, subject: string): Promise<{ nc: NatsConnection; received: Record<string, unknown>[] }> {
  const nc = await connect({ servers: `127.0.0.1:${port}` });
  cleanups.push(() => nc.close());
  const received: Record<string, unknown>[] = [];
  const sub = nc.subscribe(subject);
  void (async () => {
    for await (const m of sub) received.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>);
  })();
  await nc.flush();
  return { nc, received };
}

describe('EventPublisher', () => {
  it('publishes CloudEvents on the instance subject', async () => {
    const port = await freePort();
    await natsServer(port);
    const { received } = await subscribe(port, instanceSubject('shop', 'agent-1'));
    const publisher = new EventPublisher(`nats://127.0.0.1:${port}`, 'agent-1', logger);
    cleanups.push(() => publisher.close());
    publisher.start();
    publisher.publish('shop', 'drained', { inFlight: 0, timedOut: false });
    const event = await waitFor('event', () => received[0]);
    expect(event).toMatchObject({
      specversion: '1.0',
      source: 'fleetwave/agent/agent-1',
      type: 'io.fleetwave.instance.drained',
      subject: 'shop/agent-1',
      data: { app: 'shop', instance: 'agent-1', inFlight: 0, timedOut: false },
    });
  });

  it('buffers events while NATS is unreachable and sends them in order once it is up', async () => {
    const port = await freePort();
    const publisher = new EventPublisher(`nats://127.0.0.1:${port}`, 'agent-1', logger);
    cleanups.push(() => publisher.close());
    publisher.start();
    for (let i = 0; i < 5; i++) publisher.publish('shop', 'drain.progress', { inFlight: 5 - i });
    expect(publisher.buffered).toBe(5);
    await natsServer(port);
    const { received } = await subscribe(port, instanceSubject('shop', 'agent-1'));
    await waitFor('five events', () => received.length === 5, 10_000);
    expect(received.map((e) => (e.data as { inFlight: number }).inFlight)).toEqual([5, 4, 3, 2, 1]);
    await waitFor('the server to confirm them', () => publisher.buffered === 0);
  });

  it('closes promptly while NATS was never reachable', async () => {
    const publisher = new EventPublisher(`nats://127.0.0.1:${await freePort()}`, 'agent-1', logger);
    publisher.start();
    publisher.publish('shop', 'started', { edition: '1.0', pid: 1 });
    const started = Date.now();
    await publisher.close();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
