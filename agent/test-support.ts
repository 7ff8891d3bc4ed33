// Fixtures for the agent's tests: temp dirs, a sample app packaged as tar.gz, a package server, waiting with a deadline.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `fleetwave-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

// The one waitFor of every suite, re-exported for the agent's tests.
export { waitFor } from '../test/harness/wait.js';

/** A sample app: answers its edition on every path, `/healthz` with ok, `/slow` after 300 ms; exits on SIGTERM after draining. */
export const SAMPLE_APP = `
const http = require('node:http');
const edition = process.env.FLEETWAVE_EDITION;
const server = http.createServer((req, res) => {
  res.setHeader('x-pid', String(process.pid));
  if (req.url === '/healthz') return res.end('ok');
  if (req.url.startsWith('/slow')) return setTimeout(() => res.end(edition), 300);
  res.end(edition);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

export interface BuiltPackage {
  file: string;
  sha256: string;
  size: number;
}

/** Packs the sample app (or `files`) as a tar.gz under `dir`. */
export async function buildPackage(dir: string, name: string, files: Record<string, string> = { 'server.js': SAMPLE_APP }): Promise<BuiltPackage> {
  const src = join(dir, `${name}-src`);
  mkdirSync(src, { recursive: true });
  for (const [path, content] of Object.entries(files)) writeFileSync(join(src, path), content);
  const file = join(dir, `${name}.tar.gz`);
  await tar.c({ gzip: true, file, cwd: src }, Object.keys(files));
  const bytes = readFileSync(file);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex'), size: statSync(file).size };
}

/** Serves files of `dir` at `/<name>`; counts requests. */
export async function serveFiles(dir: string): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    try {
      const body = readFileSync(join(dir, decodeURIComponent((req.url ?? '/').slice(1))));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** One GET on 127.0.0.1; resolves status and body. */
export function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** True while a process (or its group, for a negative pid) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
