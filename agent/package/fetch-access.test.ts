// Package downloads over node:http: the credential goes only where the access function says (never across a redirect
// to another host), and a connection cut mid-body is a retryable UnavailableError, not a package error.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../common/errors.js';
import { tempDir } from '../test-support.js';
import { downloadVerified, type DownloadAccess } from './fetch.js';

const dir = tempDir('fetch-access');
const body = Buffer.alloc(32 * 1024, 3);
const sha256 = createHash('sha256').update(body).digest('hex');
const seen: Array<{ server: string; headers: IncomingHttpHeaders }> = [];
let controller: Server;
let mirror: Server;
const urlOf = (s: Server, path: string) => `http://127.0.0.1:${(s.address() as AddressInfo).port}${path}`;

function listen(name: string, handle: (path: string, res: import('node:http').ServerResponse) => void): Promise<Server> {
  const server = createServer((req, res) => {
    seen.push({ server: name, headers: req.headers });
    handle(req.url ?? '/', res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  mirror = await listen('mirror', (_path, res) => res.end(body));
  controller = await listen('controller', (path, res) => {
    if (path === '/artifacts/moved') return void res.writeHead(302, { location: urlOf(mirror, '/pkg') }).end();
    if (path === '/artifacts/cut') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 1000));
      return void setImmediate(() => res.socket?.destroy());
    }
    res.end(body);
  });
});
afterAll(async () => {
  await new Promise((r) => controller.close(r));
  await new Promise((r) => mirror.close(r));
  dir.remove();
});

describe('downloadVerified access', () => {
  const signal = new AbortController().signal;
  const access: DownloadAccess = (url) => ({ authorization: url.startsWith(urlOf(controller, '/artifacts/')) ? 'Bearer fwa_secret' : '', ca: null });

  it('sends the credential to the controller, and not to the host a redirect leads to', async () => {
    seen.length = 0;
    await downloadVerified({ url: urlOf(controller, '/artifacts/ok'), sha256, size: body.length }, join(dir.path, 'a.part'), signal, access);
    await downloadVerified({ url: urlOf(controller, '/artifacts/moved'), sha256, size: body.length }, join(dir.path, 'b.part'), signal, access);
    expect(seen.map((s) => [s.server, s.headers.authorization ?? ''])).toEqual([
      ['controller', 'Bearer fwa_secret'],
      ['controller', 'Bearer fwa_secret'],
      ['mirror', ''],
    ]);
  });

  it('reports a connection cut mid-body as unavailable (retried), not as a bad package', async () => {
    const cut = downloadVerified({ url: urlOf(controller, '/artifacts/cut'), sha256, size: body.length }, join(dir.path, 'c.part'), signal, access);
    await expect(cut).rejects.toThrow(UnavailableError);
  });
});
