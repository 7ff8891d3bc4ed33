// Through a real agent's traffic gate: streaming bodies, keep-alive, a 20 MB upload and a websocket pass unchanged.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath } from '../harness/fleet.js';

const APP = 'echo';
const WS_MODULE = join(createRequire(import.meta.url).resolve('ws'), '..', 'wrapper.mjs');

describe('the traffic gate passes traffic through unchanged', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-passthrough-'));
  const fleet = new Fleet(dir);
  let base = '';
  let port = 0;

  beforeAll(async () => {
    // Given one agent whose gate fronts an app that streams, hashes uploads and speaks websocket
    await fleet.startNats();
    await fleet.startController();
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    await fleet.startAgent('p1', 'pass', { [APP]: port });
    await fleet.adminClient.waitForAgents(['p1']);
    const created = await fleet.cli(['app', 'create', APP, '--start', 'node server.mjs', '--env', `WS_MODULE=${WS_MODULE}`]);
    expect(created.code, created.stderr).toBe(0);
    const pkg = await buildEdition({ sourceDir: repoPath('test/integration/fixtures/echo-app'), edition: '1.0', outDir: join(dir, 'packages'), name: APP });
    const installed = await fleet.cli(['edition', 'install', APP, '1.0', '--file', pkg.path]);
    expect(installed.code, installed.stderr).toBe(0);
    const release = await fleet.cli(['release', 'create', APP, '--edition', '1.0', '--batches', '1']);
    expect(release.code, release.stderr).toBe(0);
    const detail = await fleet.adminClient.waitForRelease(release.stdout.trim().split(/\s+/).pop()!, ['Released', 'Release failed']);
    expect(detail.release?.status).toBe('Released');
  });

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams a chunked response as the app writes it', async () => {
    const res = await fetch(`${base}/stream?chunks=5&gapMs=150`);
    expect(res.status).toBe(200);
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const reader = res.body!.getReader();
    const arrivals: number[] = [];
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(Date.now());
      text += Buffer.from(value).toString();
    }
    const lines = text.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual(['0', '1', '2', '3', '4']);
    // The first piece reached the client before the app wrote the last: nothing was buffered whole.
    const lastWrittenAt = Number(lines[4]!.split(' ')[2]);
    expect(arrivals[0]).toBeLessThan(lastWrittenAt);
  });

  it('keeps a keep-alive connection for request after request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const reused: boolean[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`${base}/`, { agent }, (res) => {
          reused.push(req.reusedSocket);
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
      });
    }
    agent.destroy();
    expect(reused).toEqual([false, ...Array(9).fill(true)]);
  });

  it('passes a 20 MB upload through byte for byte', async () => {
    const body = randomBytes(20 * 1024 * 1024);
    const answer = await new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
      const req = http.request(`${base}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
      });
      req.on('error', reject);
      // Written in 1 MB pieces, as a client streaming a file would.
      for (let offset = 0; offset < body.length; offset += 1024 * 1024) req.write(body.subarray(offset, offset + 1024 * 1024));
      req.end();
    });
    expect(answer).toMatchObject({ bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
  });

  it('passes a websocket through, text and binary, and closes it cleanly', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const next = () => new Promise<{ data: Buffer; isBinary: boolean }>((resolve) => socket.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
    let reply = next();
    socket.send('hello');
    expect((await reply).data.toString()).toBe('echo hello');
    const blob = randomBytes(64 * 1024);
    reply = next();
    socket.send(blob);
    const binary = await reply;
    expect(binary.isBinary).toBe(true);
    expect(Buffer.compare(binary.data, blob)).toBe(0);
    const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
    socket.close(1000, 'done');
    expect(await closed).toBe(1000);
  });
});
