// The demo's pieces that need no daemon: the sample app, edition packages and the
// load generator. (They live under examples/; vitest collects tests under cli/.)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { list } from 'tar';
import { describe, expect, it } from 'vitest';
import { buildEdition } from '../examples/demo/package.js';
import { LoadGenerator, percentile } from '../examples/demo/load.js';
import { freePort, waitFor } from '../test/harness/fleet.js';

const APP_DIR = resolve(import.meta.dirname, '../examples/app');

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((r, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => r({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('examples/app/server.js', () => {
  it('serves its edition, health and slow requests, and exits on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(APP_DIR, 'server.js')], {
      env: { ...process.env, PORT: String(port), START_DELAY_MS: '50', FLEETWAVE_EDITION: '7.1' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const health = await waitFor('the app to listen', () => get(`http://127.0.0.1:${port}/healthz`).catch(() => undefined));
      expect(health.status).toBe(200);
      const root = JSON.parse((await get(`http://127.0.0.1:${port}/`)).body);
      expect(root).toEqual({ edition: '7.1', pid: child.pid });
      const slow = get(`http://127.0.0.1:${port}/slow?ms=300`);
      // SIGTERM only once the app counts the slow request in flight (sent earlier, it would be refused).
      await waitFor('the slow request in flight', async () => JSON.parse((await get(`http://127.0.0.1:${port}/inflight`)).body).inFlight === 1);
      child.kill('SIGTERM');
      // The request in flight is finished before the process exits.
      expect(JSON.parse((await slow).body)).toMatchObject({ edition: '7.1', sleptMs: 300 });
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('buildEdition', () => {
  it('packs the app with a VERSION file at the archive root, reproducibly', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fw-pkg-'));
    const built = await buildEdition({ sourceDir: APP_DIR, edition: '2.0', outDir: out, name: 'shop' });
    expect(built.path).toBe(join(out, 'shop-2.0.tar.gz'));
    const bytes = readFileSync(built.path);
    expect(built.size).toBe(bytes.length);
    expect(built.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));

    const entries: Record<string, string> = {};
    await list({
      file: built.path,
      onReadEntry: (entry) => {
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => (entries[entry.path] = Buffer.concat(chunks).toString()));
      },
    });
    expect(Object.keys(entries).sort()).toEqual(['VERSION', 'package.json', 'server.js']);
    expect(entries.VERSION).toBe('2.0\n');

    const again = await buildEdition({ sourceDir: APP_DIR, edition: '2.0', outDir: mkdtempSync(join(tmpdir(), 'fw-pkg-')), name: 'shop' });
    expect(again.sha256).toBe(built.sha256);
    const other = await buildEdition({ sourceDir: APP_DIR, edition: '1.0', outDir: out, name: 'shop' });
    expect(other.sha256).not.toBe(built.sha256);
  });
});

describe('LoadGenerator', () => {
  it('counts ok and failed requests, editions and latency', async () => {
    let served = 0;
    const server = http.createServer((req, res) => {
      served++;
      if (req.url === '/fail') {
        res.writeHead(503);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ edition: served % 2 ? '1.0' : '2.0' }));
    });
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    try {
      const load = new LoadGenerator({ urls: [`http://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/fail`], concurrency: 2 });
      load.start();
      await waitFor('some requests', () => load.snapshot().ok > 50 && load.snapshot().failed > 5);
      const summary = await load.stop();
      expect(summary.total).toBe(summary.ok + summary.failed);
      expect(summary.ok).toBeGreaterThan(50);
      expect(summary.failures).toEqual({ 'status 503': summary.failed });
      expect(summary.failedByTarget).toEqual({ [`http://127.0.0.1:${port}/fail`]: summary.failed });
      expect(Object.keys(summary.byEdition).sort()).toEqual(['1.0', '2.0']);
      expect(summary.latencyMs.p50).toBeLessThanOrEqual(summary.latencyMs.p99);
      expect(summary.total).toBe(served);
    } finally {
      server.close();
    }
  });

  it('counts a refused connection as failed', async () => {
    const port = await freePort();
    const load = new LoadGenerator({ urls: [`http://127.0.0.1:${port}/`], concurrency: 1 });
    load.start();
    await waitFor('a failure', () => load.snapshot().failed > 0);
    const summary = await load.stop();
    expect(summary.ok).toBe(0);
    expect(summary.failures.ECONNREFUSED).toBe(summary.failed);
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 0.5)).toBe(0);
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4], 0.99)).toBe(4);
  });
});
