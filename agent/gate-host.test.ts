// The gate host as a real process: it keeps serving when its agent goes, and the next agent adopts its gates as they are.
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { GateClient } from './gate-client.js';
import { GateLink } from './gate-link.js';
import type { GateSpec } from './gate-protocol.js';
import { freePort } from './ports.js';
import { alive, get, tempDir, waitFor } from './test-support.js';

const logger = createLogger({ name: 'gate-host-test', level: 'silent' });

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
});
