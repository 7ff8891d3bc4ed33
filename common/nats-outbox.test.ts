// The outbox against a real nats-server killed mid-burst: every event reaches the JetStream stream once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, Events, type NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { NatsOutbox } from './nats-outbox.js';
import { freePort } from '../agent/ports.js';
import { HAS_NATS_SERVER as hasNats, startNats, type Nats } from '../test/harness/nats.js';
import { waitFor as until } from '../test/harness/wait.js';

const logger = createLogger({ name: 'outbox-test', level: 'silent' });
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The shared launcher on a fixed port and store, so a restarted server is the same one to the outbox. */
async function natsServer(port: number, dir: string): Promise<Nats> {
  const nats = await startNats(dir, undefined, undefined, port);
  cleanups.push(() => nats.kill());
  return nats;
}

describe.skipIf(!hasNats)('NatsOutbox', () => {
  it('resends what the server never confirmed when it dies mid-burst, and JetStream keeps each event once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwave-outbox-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const server = await natsServer(port, dir);
    const setup = await connect({ servers: `127.0.0.1:${port}` });
    await (await setup.jetstreamManager()).streams.add({ name: 'T', subjects: ['t.>'] });
    await setup.close();

    // Given an outbox wired to a connection that reconnects by itself
    const outbox = new NatsOutbox(logger);
    const nc: NatsConnection = await connect({ servers: `127.0.0.1:${port}`, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    cleanups.push(() => nc.close());
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) outbox.disconnected();
        if (s.type === Events.Reconnect) outbox.connectedTo(nc);
      }
    })();
    outbox.connectedTo(nc);

    // When the server is killed in the middle of a burst and started again
    const encoder = new TextEncoder();
    for (let i = 0; i < 2_000; i++) {
      outbox.publish(`t.${i % 7}`, encoder.encode(String(i)), `id-${i}`);
      // Killed synchronously inside the burst, so the rest is written while it is gone.
      if (i === 1_000) server.proc.child.kill('SIGKILL');
    }
    await server.proc.exited;
    await server.restart();

    // Then every event is confirmed and the stream holds each exactly once
    await until('every event confirmed', () => outbox.pending === 0, 20_000);
    const check = await connect({ servers: `127.0.0.1:${port}` });
    cleanups.push(() => check.close());
    const info = await (await check.jetstreamManager()).streams.info('T');
    expect(info.state.messages).toBe(2_000);
  }, 60_000);
});
