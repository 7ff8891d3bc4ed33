// The event publisher against a real nats-server: signed CloudEvents on the agent's ingest subject, buffered while NATS is down at start.
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { ingestSubject, SIGNATURE_HEADER, signedBytes } from '../common/events.js';
import { createLogger } from '../common/logger.js';
import { EVENT_KEY_FILE, loadEventSigner } from './event-key.js';
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

async function subscribe(port: number, subject: string): Promise<{ nc: NatsConnection; received: Record<string, unknown>[]; raw: Array<{ data: Uint8Array; signature?: string }> }> {
  const nc = await connect({ servers: `127.0.0.1:${port}` });
  cleanups.push(() => nc.close());
  const received: Record<string, unknown>[] = [];
  const raw: Array<{ data: Uint8Array; signature?: string }> = [];
  const sub = nc.subscribe(subject);
  void (async () => {
    for await (const m of sub) {
      received.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>);
      raw.push({ data: m.data, signature: m.headers?.get(SIGNATURE_HEADER) || undefined });
    }
  })();
  await nc.flush();
  return { nc, received, raw };
}

/** Opens `port` as a plain TCP pipe to `target` on 127.0.0.1; closed (connections cut) after the test. */
async function openPipe(port: number, target: number): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connectTcp(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
}

describe('EventPublisher', () => {
  it('publishes CloudEvents on the ingest subject, signed with the key it keeps in its data dir', async () => {
    const port = await freePort();
    await natsServer(port);
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetwave-event-key-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const signer = loadEventSigner(dataDir);
    expect(statSync(join(dataDir, EVENT_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(loadEventSigner(dataDir).publicKey).toEqual(signer.publicKey);
    const subject = ingestSubject('shop', 'agent-1');
    const { received, raw } = await subscribe(port, subject);
    const publisher = new EventPublisher(`nats://127.0.0.1:${port}`, 'agent-1', logger, {}, signer);
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
    const key = createPublicKey({ key: Buffer.from(signer.publicKey), format: 'der', type: 'spki' });
    expect(verify(null, signedBytes(subject, raw[0]!.data), key, Buffer.from(raw[0]!.signature!, 'base64'))).toBe(true);
  });

  it('buffers events while NATS is unreachable and sends them in order once it is up', async () => {
    const port = await freePort();
    const publisher = new EventPublisher(`nats://127.0.0.1:${port}`, 'agent-1', logger);
    cleanups.push(() => publisher.close());
    publisher.start();
    for (let i = 0; i < 5; i++) publisher.publish('shop', 'drain.progress', { inFlight: 5 - i });
    expect(publisher.buffered).toBe(5);
    // NATS comes up elsewhere, and the test subscribes there before the publisher's port opens onto it: the
    // publisher cannot get through (and send its buffer) before the subscription is in place.
    const serverPort = await freePort();
    await natsServer(serverPort);
    const { received } = await subscribe(serverPort, ingestSubject('shop', 'agent-1'));
    await openPipe(port, serverPort);
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
