// The outbox against a real nats-server killed mid-burst: every event reaches the JetStream stream once.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, Events, type NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { NatsOutbox } from './nats-outbox.js';

const hasNats = spawnSync('nats-server', ['--version']).status === 0;
const logger = createLogger({ name: 'outbox-test', level: 'silent' });
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function natsServer(port: number, dir: string): Promise<ChildProcess> {
  const proc = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  cleanups.push(() => proc.exitCode === null && proc.kill('SIGKILL'));
  await until('nats-server up', async () => {
    try {
      await (await connect({ servers: `127.0.0.1:${port}`, reconnect: false })).close();
      return true;
    } catch {
      return false;
    }
  });
  return proc;
}

describe.skipIf(!hasNats)('NatsOutbox', () => {
  it('resends what the server never confirmed when it dies mid-burst, and JetStream keeps each event once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwave-outbox-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    let server = await natsServer(port, dir);
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
      if (i === 1_000) server.kill('SIGKILL');
    }
    await new Promise((r) => server.once('exit', r));
    server = await natsServer(port, dir);

    // Then every event is confirmed and the stream holds each exactly once
    await until('every event confirmed', () => outbox.pending === 0, 20_000);
    const check = await connect({ servers: `127.0.0.1:${port}` });
    cleanups.push(() => check.close());
    const info = await (await check.jetstreamManager()).streams.info('T');
    expect(info.state.messages).toBe(2_000);
  }, 60_000);
});
