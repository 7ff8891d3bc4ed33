// The HTTP side's routing and access rules in-process: a real token table (SQLite in memory), fake admin handlers
// and a fixture console dir, over plain HTTP on loopback (the TLS side is test/integration/http-security.test.ts).
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceEvent, releaseEvent } from '../common/events.js';
import { createLogger } from '../common/logger.js';
import type { AdminServiceServer } from '../proto/gen/fleetwave/v1/admin.js';
import { ACTOR_KEY, Authenticator } from './auth.js';
import { EventHub } from './event-hub.js';
import { createHttpServer } from './http.js';
import { CONSOLE_CSP } from './http-console.js';
import type { ControllerMetrics } from './metrics.js';
import { TokenStore, type Role } from './tokens.js';

const log = createLogger({ name: 'http-test', level: 'silent' });
type Callback = (err: Partial<grpc.StatusObject> | null, value?: unknown) => void;
type Call = { request: unknown; metadata: grpc.Metadata };

async function listen(server: Server): Promise<string> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the HTTP endpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-http-'));
  const tokens = new TokenStore(new Database(':memory:'));
  const hub = new EventHub();
  const token = (role: Role) => tokens.createToken({ name: `${role}-1`, role, createdBy: 't' }).secret;
  const actions: Array<{ actor: string; request: unknown }> = [];
  const admin = {
    listApps: (_call: Call, cb: Callback) => cb(null, { apps: [{ name: 'shop' }] }),
    releaseAction: (call: Call, cb: Callback) => {
      actions.push({ actor: String(call.metadata.get(ACTOR_KEY)[0]), request: call.request });
      if ((call.request as { id: string }).id === 'gone') return cb({ code: grpc.status.NOT_FOUND, details: "release 'gone' does not exist" });
      cb(null, { release: { id: (call.request as { id: string }).id, status: 'Releasing' } });
    },
    createToken: () => {
      throw new Error('never called over HTTP');
    },
  } as unknown as AdminServiceServer;
  const metrics = { registry: { metrics: async () => 'fleetwave_up 1\n', contentType: 'text/plain; version=0.0.4' } } as unknown as ControllerMetrics;
  let secure: Server;
  let open: Server;
  let base = '';
  let openBase = '';
  let viewer = '';
  let operator = '';
  let metricsToken = '';

  beforeAll(async () => {
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(dir, 'console.js'), 'console.log(1)');
    writeFileSync(join(dir, 'login.html'), '<!doctype html><title>login</title>');
    writeFileSync(join(dir, 'console.css'), 'body{}');
    // login.js is missing on purpose: a missing file is a 404.
    const common = { dataDir: dir, hub, metrics, logger: log, admin, consoleDir: dir, tls: null };
    secure = createHttpServer({ ...common, auth: new Authenticator(tokens, log), keepAliveMs: 50 });
    open = createHttpServer({ ...common, auth: null });
    base = await listen(secure);
    openBase = await listen(open);
    viewer = token('viewer');
    operator = token('operator');
    metricsToken = token('metrics');
  });

  afterAll(async () => {
    secure.closeAllConnections();
    open.closeAllConnections();
    await Promise.all([secure, open].map((s) => new Promise((done) => s.close(done))));
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), redirect: 'manual' });

  it('refuses every route but the public ones without a credential', async () => {
    for (const path of ['/', '/assets/console.js', '/events', '/metrics', '/api/v1/whoami']) {
      const res = await fetch(base + path, { redirect: 'manual' });
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toEqual({ error: expect.stringMatching(/bearer token is required/) });
    }
    expect((await post(`${base}/api/v1/rpc/listApps`, {})).status).toBe(401);
    expect((await post(`${base}/api/v1/rpc/createToken`, {})).status).toBe(401);
    for (const path of ['/login', '/assets/console.css', '/healthz']) expect((await fetch(base + path)).status, path).toBe(200);
    expect((await fetch(`${base}/assets/login.js`)).status).toBe(404);
  });

  it('sends a browser without a credential to /login, and clears a dead cookie', async () => {
    const res = await fetch(`${base}/`, { headers: { accept: 'text/html,*/*' }, redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login');
    const dead = await fetch(`${base}/`, { headers: { accept: 'text/html', cookie: 'fleetwave_session=fwt_dead' }, redirect: 'manual' });
    expect(dead.status).toBe(303);
    expect(dead.headers.get('set-cookie')).toMatch(/^fleetwave_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
  });

  it('serves console files with the CSP, no-cache and a sha256 ETag (304 when unchanged)', async () => {
    const res = await fetch(`${base}/`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(await res.text()).toContain('<title>console</title>');
    const again = await fetch(`${base}/`, { headers: { authorization: `Bearer ${viewer}`, 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect((await fetch(`${base}/assets/console.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('signs in with a token into a session cookie, answers whoami through it, and signs out', async () => {
    expect((await post(`${base}/api/v1/session`, { token: 'fwt_wrong' })).status).toBe(401);
    expect((await post(`${base}/api/v1/session`, {})).status).toBe(400);
    expect((await post(`${base}/api/v1/session`, { token: metricsToken })).status).toBe(403);
    const res = await post(`${base}/api/v1/session`, { token: operator });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 'operator-1', role: 'operator', insecure: false });
    // Plain HTTP here: no Secure attribute (the TLS test checks it is there over HTTPS).
    expect(res.headers.get('set-cookie')).toBe(`fleetwave_session=${operator}; Path=/; HttpOnly; SameSite=Strict`);
    const cookie = `fleetwave_session=${operator}`;
    expect(await (await fetch(`${base}/api/v1/whoami`, { headers: { cookie } })).json()).toEqual({ name: 'operator-1', role: 'operator', insecure: false });
    const out = await fetch(`${base}/api/v1/session`, { method: 'DELETE', headers: { 'content-type': 'application/json' } });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
  });

  it('calls allowlisted RPCs with the token name as actor, maps errors, and 404s the rest', async () => {
    const listed = await post(`${base}/api/v1/rpc/listApps`, {}, { authorization: `Bearer ${viewer}` });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await listed.json()).toMatchObject({ apps: [{ name: 'shop' }] });
    const forged = await post(`${base}/api/v1/rpc/releaseAction`, { id: 'r1', action: 'approve' }, { authorization: `Bearer ${viewer}` });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toEqual({ error: "POST /api/v1/rpc/releaseAction needs the operator role; token 'viewer-1' is viewer" });
    expect(actions).toEqual([]);
    const done = await post(`${base}/api/v1/rpc/releaseAction`, { id: 'r1', action: 'approve', comment: 'ok' }, { cookie: `fleetwave_session=${operator}` });
    expect(done.status).toBe(200);
    expect(await done.json()).toMatchObject({ release: { id: 'r1', status: 'Releasing' } });
    expect(actions).toEqual([{ actor: 'operator-1', request: expect.objectContaining({ id: 'r1', action: 'approve', comment: 'ok' }) }]);
    const missing = await post(`${base}/api/v1/rpc/releaseAction`, { id: 'gone', action: 'pause' }, { authorization: `Bearer ${operator}` });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "release 'gone' does not exist" });
    const admin = token('admin');
    const closed = await post(`${base}/api/v1/rpc/createToken`, { name: 'x', role: 'admin' }, { authorization: `Bearer ${admin}` });
    expect(closed.status).toBe(404);
    expect((await closed.json()).error).toMatch(/^no RPC 'createToken' over HTTP; open ones: listApps, /);
    for (const odd of ['__proto__', 'constructor', 'toString', 'ListApps']) {
      expect((await post(`${base}/api/v1/rpc/${odd}`, {}, { authorization: `Bearer ${admin}` })).status, odd).toBe(404);
    }
  });

  it('checks content type, Origin with the cookie, body size and JSON', async () => {
    const cookie = `fleetwave_session=${operator}`;
    const text = await fetch(`${base}/api/v1/rpc/listApps`, { method: 'POST', headers: { cookie, 'content-type': 'text/plain' }, body: '{}' });
    expect(text.status).toBe(415);
    const host = new URL(base).host;
    expect((await post(`${base}/api/v1/rpc/listApps`, {}, { cookie, origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(`${base}/api/v1/rpc/listApps`, {}, { cookie, origin: 'null' })).status).toBe(403);
    expect((await post(`${base}/api/v1/rpc/listApps`, {}, { cookie, origin: `http://${host}` })).status).toBe(200);
    // A bearer header cannot come from another site's page: no Origin check.
    expect((await post(`${base}/api/v1/rpc/listApps`, {}, { authorization: `Bearer ${viewer}`, origin: 'https://evil.example' })).status).toBe(200);
    // Signing in from another site (login CSRF) is refused too.
    expect((await post(`${base}/api/v1/session`, { token: viewer }, { origin: 'https://evil.example' })).status).toBe(403);
    const big = await post(`${base}/api/v1/rpc/listApps`, { pad: 'x'.repeat(1024 * 1024) }, { cookie });
    expect(big.status).toBe(413);
    const bad = await fetch(`${base}/api/v1/rpc/listApps`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{nope' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/^request body is not JSON/);
    expect((await post(`${base}/api/v1/rpc/listApps`, [1], { cookie })).status).toBe(400);
    expect((await fetch(`${base}/api/v1/rpc/listApps`, { headers: { cookie } })).status).toBe(405);
  });

  it('opens /metrics alone to a metrics token', async () => {
    const auth = { authorization: `Bearer ${metricsToken}` };
    const res = await fetch(`${base}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('fleetwave_up 1\n');
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${viewer}` } })).status).toBe(200);
    for (const path of ['/', '/events', '/api/v1/whoami']) expect((await fetch(base + path, { headers: auth })).status, path).toBe(403);
    expect((await post(`${base}/api/v1/rpc/listApps`, {}, auth)).status).toBe(403);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token('router')}` } })).status).toBe(403);
  });

  it('refuses a revoked token on its next request', async () => {
    const secret = tokens.createToken({ name: 'short', role: 'viewer', createdBy: 't' }).secret;
    const cookie = `fleetwave_session=${secret}`;
    expect((await fetch(`${base}/api/v1/whoami`, { headers: { cookie } })).status).toBe(200);
    tokens.revokeToken('short');
    expect((await fetch(`${base}/api/v1/whoami`, { headers: { cookie } })).status).toBe(401);
  });

  it('ends an open event stream once its token is revoked (checked at each keep-alive)', async () => {
    const secret = tokens.createToken({ name: 'watcher', role: 'viewer', createdBy: 't' }).secret;
    const res = await fetch(`${base}/events`, { headers: { cookie: `fleetwave_session=${secret}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const read = async () => new TextDecoder().decode((await reader.read()).value);
    expect(await read()).toContain(': fleetwave events');
    expect(await read()).toContain(': keep-alive');
    tokens.revokeToken('watcher');
    // Whatever keep-alive was already on its way, the stream then ends.
    for (;;) if ((await reader.read()).done) break;
  });

  it('sends a stream only the events its filter names, and refuses an unknown type', async () => {
    expect((await fetch(`${openBase}/events?types=io.fleetwave.bogus`)).status).toBe(400);
    const res = await fetch(`${openBase}/events?types=io.fleetwave.release.&release=r-1`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(': fleetwave events')) text += new TextDecoder().decode((await reader.read()).value);
    const others = [
      instanceEvent('fleetwave/agent/a1', 'shop', 'a1', 'drain.progress', { inFlight: 3 }),
      releaseEvent('fleetwave/controller', 'shop', 'r-2', 'status.changed', { status: 'Releasing' }),
    ];
    const wanted = releaseEvent('fleetwave/controller', 'shop', 'r-1', 'status.changed', { status: 'Released' });
    for (const e of [...others, wanted]) hub.publish(e.subject, e.event);
    // Events go out in order, so once r-1's is there, the two before it were left out or would be there too.
    while (!text.includes(wanted.event.id)) text += new TextDecoder().decode((await reader.read()).value);
    for (const e of others) expect(text).not.toContain(e.event.id);
    await reader.cancel();
  });

  it('is open in insecure mode, as the made-up admin "insecure"', async () => {
    expect(await (await fetch(`${openBase}/api/v1/whoami`)).json()).toEqual({ name: 'insecure', role: 'admin', insecure: true });
    expect((await fetch(`${openBase}/`)).status).toBe(200);
    expect((await fetch(`${openBase}/metrics`)).status).toBe(200);
    const done = await post(`${openBase}/api/v1/rpc/releaseAction`, { id: 'r2', action: 'pause' });
    expect(done.status).toBe(200);
    expect(actions.at(-1)).toMatchObject({ actor: 'insecure' });
    expect((await post(`${openBase}/api/v1/session`, { token: 'anything' })).status).toBe(200);
    expect((await fetch(`${openBase}/nope`)).status).toBe(404);
  });
});
