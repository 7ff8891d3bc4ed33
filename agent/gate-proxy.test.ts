// The gate's forwarding path copies header lists as sent: repeats kept, hop-by-hop headers dropped, X-Forwarded-For extended.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { TrafficGate } from './gate.js';
import { freePort } from './ports.js';

const logger = createLogger({ name: 'gate-proxy-test', level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An app that answers with the request's raw headers and body, and sets two cookies and hop-by-hop headers. */
async function echoApp(): Promise<number> {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, ['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Keep-Alive', 'timeout=5', 'X-App', 'yes']);
      res.end(JSON.stringify({ raw: req.rawHeaders, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  }));
  return port;
}

async function gateTo(targetPort: number): Promise<number> {
  const gate = new TrafficGate({ app: 'shop', host: '127.0.0.1', port: 0, targetPort, healthPath: '/healthz', queueLimit: 10, holdMs: 1000, isAppExpected: () => true, logger });
  cleanups.push(() => gate.close());
  return gate.listen();
}

function send(port: number, method: string, headers: string[], body?: string): Promise<{ res: http.IncomingMessage; json: { raw: string[]; body: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: '/x?y=1', headers: ['Host', 'shop.example', ...headers], agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve({ res, json: JSON.parse(text) });
        } catch {
          reject(new Error(`status ${res.statusCode}: ${text}`));
        }
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

describe('gate forwarding', () => {
  it('passes repeated headers through both ways and drops hop-by-hop ones', async () => {
    const port = await gateTo(await echoApp());
    const { res, json } = await send(port, 'GET', ['X-Tag', 'one', 'X-Tag', 'two', 'Proxy-Connection', 'keep-alive', 'TE', 'trailers', 'X-Forwarded-For', '10.0.0.1', 'x-forwarded-for', '10.0.0.2']);
    const sent = pairs(json.raw);
    expect(sent.filter(([n]) => n === 'x-tag')).toEqual([['x-tag', 'one'], ['x-tag', 'two']]);
    expect(sent.map(([n]) => n)).not.toContain('proxy-connection');
    expect(sent.map(([n]) => n)).not.toContain('te');
    expect(sent.filter(([n]) => n === 'x-forwarded-for')).toEqual([['x-forwarded-for', '10.0.0.1, 10.0.0.2, 127.0.0.1']]);
    expect(sent).toContainEqual(['host', 'shop.example']);
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.headers['x-app']).toBe('yes');
    expect(res.rawHeaders.map((h) => h.toLowerCase())).not.toContain('keep-alive');
  });

  it('forwards request bodies, sized and chunked', async () => {
    const port = await gateTo(await echoApp());
    const sized = await send(port, 'POST', ['Content-Length', '5'], 'hello');
    expect(sized.json.body).toBe('hello');
    const chunked = await send(port, 'POST', ['Transfer-Encoding', 'chunked'], 'streamed');
    expect(chunked.json.body).toBe('streamed');
    expect(pairs(chunked.json.raw)).toContainEqual(['transfer-encoding', 'chunked']);
  });

  it('gives an HTTP/1.0 request without Host one for the app', async () => {
    const appPort = await echoApp();
    const port = await gateTo(appPort);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { raw: string[] };
    expect(pairs(json.raw)).toContainEqual(['host', `127.0.0.1:${appPort}`]);
  });
});
