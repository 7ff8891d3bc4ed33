// The gate host as a real process: it keeps serving when its agent goes, the next agent adopts its gates as they are,
// and one of another version hands its sockets over to a new one (or, older than the hand-over, is replaced).
import http from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { serviceLoad } from '../test/harness/service-load.js';
import { GateClient } from './gate-client.js';
import { GateHost, type GateHostOptions } from './gate-host.js';
import { GateLink } from './gate-link.js';
import { GATE_PROTOCOL, gateSocketPath, type GateSpec } from './gate-protocol.js';
import { freePort } from './ports.js';
import { alive, get, tempDir, waitFor } from './test-support.js';

const logger = createLogger({ name: 'gate-host-test', level: process.env.GATE_TEST_LOG ?? 'silent' });

describe('gate host', () => {
  const dir = tempDir('gate-host');
  const servers: http.Server[] = [];
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    dir.remove();
  });

  async function backend(port: number, body: string): Promise<http.Server> {
    const server = http.createServer((_req, res) => res.end(body));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    servers.push(server);
    return server;
  }

  const spec = (targetPort: number): GateSpec => ({
    app: 'shop', host: '127.0.0.1', port: 0, targetPort, healthPath: '/healthz', queueLimit: 100, holdMs: 10_000, quiesced: false, appExpected: true, listen: true,
  });

  it('keeps its gates serving without an agent, and hands them over quiesced as they were', async () => {
    const dataDir = join(dir.path, 'adopt');
    mkdirSync(dataDir, { recursive: true });
    const target = await freePort();
    await backend(target, 'v1');

    // Given an agent that opened a gate in a gate host it spawned, and quiesced it
    const first = await GateLink.open(dataDir, logger);
    expect(first.adopted).toBe(false);
    const gate = await GateClient.open(first, spec(target), () => true);
    expect((await get(gate.port, '/')).body).toBe('v1');
    await gate.quiesce();
    const held = get(gate.port, '/held');
    await waitFor('a request held', async () => (await first.request({ op: 'hello' })).gates?.[0]?.held === 1);

    // When that agent goes away (its link closes without a word)
    gate.detach();
    first.close();

    // Then the gate still answers on its port (health 503: still quiesced), and the next agent adopts it as it is
    expect((await get(gate.port, '/healthz')).status).toBe(503);
    const second = await GateLink.open(dataDir, logger);
    expect(second.adopted).toBe(true);
    const adopted = await GateClient.open(second, { ...spec(target), port: gate.port }, () => true);
    expect(adopted).toMatchObject({ adopted: true, quiesced: true, port: gate.port, held: 1 });
    await adopted.release();
    expect(await held).toMatchObject({ status: 200, body: 'v1' });

    // And a shutdown closes the gates and ends the process
    const pid = second.hostPid;
    expect(alive(pid)).toBe(true);
    await second.request({ op: 'shutdown' });
    second.close();
    await waitFor('the gate host to exit', () => !alive(pid));
    await expect(get(gate.port, '/')).rejects.toThrow();
  });

  it('exits by itself once its data dir is removed', async () => {
    const dataDir = join(dir.path, 'removed');
    mkdirSync(dataDir, { recursive: true });
    const link = await GateLink.open(dataDir, logger);
    const pid = link.hostPid;
    link.close();
    dir.remove();
    await waitFor('the gate host to exit', () => !alive(pid), 10_000);
  });

  /** A gate host in this process playing an older version (another protocol; `features: []`: older than hand-over). */
  async function olderHost(dataDir: string, options: GateHostOptions): Promise<{ host: GateHost; exited: Promise<void> }> {
    mkdirSync(dataDir, { recursive: true });
    let exit = (): void => {};
    const exited = new Promise<void>((resolve) => (exit = resolve));
    const host = new GateHost(gateSocketPath(dataDir), dataDir, logger, exit, { protocol: 'older', ...options });
    await host.start();
    return { host, exited };
  }

  /** A logger whose lines the test reads. */
  function recordingLogger(): { logger: typeof logger; lines: () => string[] } {
    const lines: string[] = [];
    return { logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }), lines: () => lines };
  }

  it('hands its sockets over to a gate host of another version: no request refused or failed, held ones still held', async () => {
    const dataDir = join(dir.path, 'handover');
    const target = await freePort();
    await backend(target, 'v1');
    // Given an older gate host with an open gate under load (fresh and keep-alive connections) and a quiesced one
    // holding a request
    const old = await olderHost(dataDir, {});
    const first = (await GateLink.connect(gateSocketPath(dataDir)))!;
    const shop = await GateClient.open(first, spec(target), () => true);
    const cart = await GateClient.open(first, { ...spec(target), app: 'cart', quiesced: true }, () => true);
    const fresh = serviceLoad(shop.port);
    const kept = serviceLoad(shop.port, { keepAlive: true });
    const held = get(cart.port, '/held');
    await waitFor('traffic and a held request', async () => fresh.counts.ok > 50 && kept.counts.ok > 50 && (await first.request({ op: 'hello' })).gates?.[1]?.held === 1);
    first.close();

    // When an agent of our version links to it
    const { logger: recording, lines } = recordingLogger();
    const link = await GateLink.open(dataDir, recording);

    // Then a new gate host process serves the gates as they were
    expect(link.hostPid).not.toBe(process.pid);
    expect(link.adopted).toBe(true);
    const hello = await link.request({ op: 'hello' });
    expect(hello).toMatchObject({ protocol: GATE_PROTOCOL, pid: link.hostPid });
    expect(hello.gates).toEqual([
      expect.objectContaining({ app: 'shop', port: shop.port, targetPort: target, listening: true, quiesced: false }),
      expect.objectContaining({ app: 'cart', port: cart.port, listening: true, quiesced: true, held: 1 }),
    ]);
    expect(lines().join('')).toContain('gate host handed its sockets over');
    const during = fresh.counts.ok + kept.counts.ok;
    await waitFor('traffic through the new gate host', () => fresh.counts.ok + kept.counts.ok > during + 50);
    const counts = [await fresh.stop(), await kept.stop()];
    expect(counts.map((c) => ({ refused: c.refused, failed: c.failed }))).toEqual([{ refused: 0, failed: [] }, { refused: 0, failed: [] }]);

    // And the held request, relayed to the new host, goes to the app once released there; then the old host exits
    await (await GateClient.open(link, { ...spec(target), app: 'cart', port: cart.port }, () => true)).release();
    expect(await held).toMatchObject({ status: 200, body: 'v1' });
    await old.exited;
    await link.shutdownHost();
    await waitFor('the new gate host to exit', () => !alive(link.hostPid));
  });

  it('goes on serving when the new gate host cannot start', async () => {
    const dataDir = join(dir.path, 'handover-failed');
    const target = await freePort();
    await backend(target, 'v1');
    const old = await olderHost(dataDir, {});
    const link = (await GateLink.connect(gateSocketPath(dataDir)))!;
    const shop = await GateClient.open(link, spec(target), () => true);

    // When asked to hand over to a program that is not there
    const asked = link.request({ op: 'handover', entry: join(dataDir, 'missing.js'), execPath: process.execPath, env: { ...process.env }, drainMs: 1000 });

    // Then it refuses, and its gate and gate.sock serve as before
    await expect(asked).rejects.toThrow(/did not take over/);
    expect((await get(shop.port, '/')).body).toBe('v1');
    expect((await link.request({ op: 'hello' })).gates).toEqual([expect.objectContaining({ app: 'shop', listening: true })]);
    link.close();
    await old.host.shutdown('test done');
    await old.exited;
  });

  it('replaces a gate host older than the hand-over: told to shut down, a new one binds the ports', async () => {
    const dataDir = join(dir.path, 'fallback');
    const target = await freePort();
    await backend(target, 'v1');
    // Given a gate host of another version that does not know the hand-over, with an open gate
    const old = await olderHost(dataDir, { features: [] });
    const first = (await GateLink.connect(gateSocketPath(dataDir)))!;
    const shop = await GateClient.open(first, spec(target), () => true);
    first.close();

    // When an agent of our version links to it
    const { logger: recording, lines } = recordingLogger();
    const link = await GateLink.open(dataDir, recording);

    // Then the old host shut down, a new one was spawned (nothing to adopt), and the gate opens again on its port
    await old.exited;
    expect(link.adopted).toBe(false);
    expect(link.hostPid).not.toBe(process.pid);
    expect(lines().join('')).toContain('predates the socket hand-over');
    const reopened = await GateClient.open(link, { ...spec(target), port: shop.port }, () => true);
    expect(reopened).toMatchObject({ adopted: false, port: shop.port });
    expect((await get(shop.port, '/')).body).toBe('v1');
    await link.shutdownHost();
    await waitFor('the new gate host to exit', () => !alive(link.hostPid));
    expect(existsSync(gateSocketPath(dataDir))).toBe(false);
  });
});
