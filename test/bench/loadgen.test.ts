// The 2 s-timeout load generator sorts what clients see: ok, 503 with Retry-After, client timeouts, refused.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../harness/fleet.js';
import { waitFor } from '../harness/wait.js';
import { ClientLoad } from './loadgen.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: http.RequestListener): Promise<string> {
  const port = await freePort();
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return `http://127.0.0.1:${port}/`;
}

describe('ClientLoad', () => {
  it('counts ok, 503 with Retry-After, timeouts and refused apart', async () => {
    const ok = await serve((_req, res) => res.end('{}'));
    const busy = await serve((_req, res) => {
      res.writeHead(503, { 'retry-after': '1' });
      res.end();
    });
    // Never answers: every request is the client's timeout.
    const stuck = await serve(() => undefined);
    const refused = `http://127.0.0.1:${await freePort()}/`;
    const load = new ClientLoad({ urls: [ok, busy, stuck, refused], concurrency: 1, timeoutMs: 100 });
    load.start();
    await waitFor('every outcome at least once', () => {
      const c = load['counts'];
      return c.ok > 0 && c.retryAfter503 > 0 && c.clientTimeouts > 0 && c.refused > 0;
    });
    const summary = await load.stop();
    expect(summary.other).toEqual({});
    expect(summary.total).toBe(summary.ok + summary.retryAfter503 + summary.clientTimeouts + summary.refused);
    // Timed-out requests count as held for the whole timeout.
    expect(load.held(0).heldMaxMs).toBe(100);
  });
});
