// The console's HTTP side on a real secured controller (issue 13): every route refused without a credential, sign-in
// into a Secure session cookie, the metrics role, a viewer's forged release action refused with no change record, an
// operator's approval through the cookie recorded under the token's name, CSRF refusals, a revoked token refused at
// once, and an --insecure controller open. Real processes over HTTPS on loopback; tokens made through the CLI.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { freePort, repoPath, startController, waitFor, type ControllerProc } from '../harness/fleet.js';
import { startSecureFleet, type SecureFleet } from './secure-fleet.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request trusting `ca` (plain HTTP for an http: URL); an SSE stream is cut after its first bytes. */
function send(url: string, o: { ca?: Buffer; method?: string; headers?: Record<string, string>; json?: unknown } = {}): Promise<Answer> {
  const body = o.json === undefined ? undefined : JSON.stringify(o.json);
  const headers = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...o.headers };
  return new Promise((resolve, reject) => {
    const request = url.startsWith('http:') ? httpRequest : httpsRequest;
    const req = request(url, { ca: o.ca, method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += chunk;
        if (res.headers['content-type'] === 'text/event-stream') {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
          req.destroy();
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A tiny console in place of the built one (the console's own suite serves the real files). */
function fixtureConsole(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries({
    'index.html': '<!doctype html><title>fleetwave console</title><script src="/assets/console.js"></script>',
    'console.js': 'document.title = "fleetwave";',
    'login.html': '<!doctype html><title>sign in</title><script src="/assets/login.js"></script>',
    'login.js': 'void 0;',
    'console.css': 'body { margin: 0 }',
  })) writeFileSync(join(dir, file), text);
  return dir;
}

describe('the console HTTP API of a secured controller', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-http-api-'));
  const consoleDir = fixtureConsole(join(dir, 'console'));
  let fleet: SecureFleet;
  let ca: Buffer;
  let viewer = '';
  let operator = '';
  let metrics = '';
  let releaseId = '';
  const url = (path: string) => fleet.controller.httpUrl + path;
  const rpc = (method: string, json: unknown, headers: Record<string, string>) => send(url(`/api/v1/rpc/${method}`), { ca, json, headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    fleet = await startSecureFleet(dir, ['--console-dir', consoleDir]);
    ca = readFileSync(fleet.caFile);
    [viewer, operator, metrics] = await Promise.all([fleet.newToken('dash', 'viewer'), fleet.newToken('olivia', 'operator'), fleet.newToken('prom', 'metrics')]);
    const joinToken = await fleet.newToken('join-web', 'agent');
    await fleet.launchAgent('web-1', { instances: { shop: await freePort() }, args: ['--join-token', joinToken] });
    expect((await fleet.cli(fleet.admin, ['app', 'create', 'shop', '--start', 'node server.js'])).code).toBe(0);
    const pkg = await buildEdition({ sourceDir: repoPath('examples', 'app'), edition: '1.0', outDir: dir, name: 'shop' });
    expect((await fleet.cli(fleet.admin, ['edition', 'install', 'shop', '1.0', '--file', pkg.path])).code).toBe(0);
    await waitFor('web-1 connected', async () => /connected/.test((await fleet.cli(viewer, ['agent', 'list'])).stdout), 30_000);
    // A release held at an approval before its only batch: the action the console's operators take.
    const created = await fleet.cli(operator, ['release', 'create', 'shop', '--edition', '1.0', '--batches', '1', '--approval-before', '1', '--drain', '1s']);
    expect(created.code, created.stderr).toBe(0);
    releaseId = created.stdout.trim().split(/\s+/).pop()!;
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses every route but /healthz and the sign-in page without a credential', async () => {
    for (const path of ['/', '/assets/console.js', '/events', '/metrics', '/api/v1/whoami']) {
      const res = await send(url(path), { ca });
      expect(res.status, path).toBe(401);
      expect(JSON.parse(res.body), path).toEqual({ error: expect.any(String) });
    }
    for (const method of ['listApps', 'releaseAction', 'createToken', 'nothing']) expect((await rpc(method, {}, {})).status, method).toBe(401);
    expect((await send(url(`/artifacts/${'0'.repeat(64)}`), { ca })).status).toBe(401);
    // A browser is sent to the sign-in page instead.
    const page = await send(url('/'), { ca, headers: { accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/login');
    for (const path of ['/healthz', '/login', '/assets/login.js', '/assets/console.css']) expect((await send(url(path), { ca })).status, path).toBe(200);
  });

  it('signs in with a token into a Secure HttpOnly SameSite=Strict cookie that opens the console', async () => {
    expect((await send(url('/api/v1/session'), { ca, json: { token: 'fwt_forged' } })).status).toBe(401);
    const signIn = await send(url('/api/v1/session'), { ca, json: { token: viewer } });
    expect(signIn.status).toBe(200);
    expect(JSON.parse(signIn.body)).toEqual({ name: 'dash', role: 'viewer', insecure: false });
    expect(signIn.headers['set-cookie']).toEqual([`fleetwave_session=${viewer}; Path=/; HttpOnly; SameSite=Strict; Secure`]);
    const cookie = `fleetwave_session=${viewer}`;
    const page = await send(url('/'), { ca, headers: { cookie, accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>fleetwave console</title>');
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'self'; .*script-src 'self'.*frame-ancestors 'none'/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect((await send(url('/events'), { ca, headers: { cookie } })).status).toBe(200);
    expect(JSON.parse((await send(url('/api/v1/whoami'), { ca, headers: { cookie } })).body)).toEqual({ name: 'dash', role: 'viewer', insecure: false });
  });

  it('opens /metrics alone to a metrics token', async () => {
    const metricsRes = await send(url('/metrics'), { ca, headers: bearer(metrics) });
    expect(metricsRes.status).toBe(200);
    expect(metricsRes.body).toMatch(/fleetwave_/);
    for (const path of ['/', '/events', '/api/v1/whoami']) expect((await send(url(path), { ca, headers: bearer(metrics) })).status, path).toBe(403);
    expect((await rpc('listApps', {}, bearer(metrics))).status).toBe(403);
    expect((await send(url('/api/v1/session'), { ca, json: { token: metrics } })).status).toBe(403);
    // And the admin API over gRPC stays closed to it.
    const cli = await fleet.cli(metrics, ['app', 'list']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/needs the viewer role; token 'prom' is metrics/);
  });

  it("refuses a viewer's forged release action with 403 and records nothing", async () => {
    const forged = await rpc('releaseAction', { id: releaseId, action: 'approve', comment: 'not mine to give' }, { cookie: `fleetwave_session=${viewer}` });
    expect(forged.status).toBe(403);
    expect(JSON.parse(forged.body).error).toMatch(/needs the operator role; token 'dash' is viewer/);
    const detail = JSON.parse((await rpc('getRelease', { id: releaseId }, bearer(viewer))).body);
    expect(detail.release.status).toBe('Releasing');
    expect(detail.changes.map((c: { actor: string }) => c.actor)).not.toContain('dash');
  });

  it('refuses a cookie POST without a JSON content type (415) or from another origin (403)', async () => {
    const cookie = `fleetwave_session=${operator}`;
    const form = await send(url('/api/v1/rpc/releaseAction'), { ca, method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    const cross = await rpc('releaseAction', { id: releaseId, action: 'approve' }, { cookie, origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(JSON.parse(cross.body).error).toMatch(/^origin https:\/\/evil\.example is not this controller/);
    expect((await send(url('/api/v1/rpc/listApps'), { ca, method: 'POST', headers: { cookie, 'content-type': 'application/json' } })).status).toBe(200);
  });

  it("approves through an operator's cookie, recorded under the token's name, and the release goes on", async () => {
    const cookie = `fleetwave_session=${operator}`;
    const host = new URL(fleet.controller.httpUrl).host;
    const approved = await rpc('releaseAction', { id: releaseId, action: 'approve', comment: 'looks good' }, { cookie, origin: `https://${host}` });
    expect(approved.status, approved.body).toBe(200);
    expect(JSON.parse(approved.body).release.id).toBe(releaseId);
    const done = await waitFor('the release to end', async () => {
      const d = JSON.parse((await rpc('getRelease', { id: releaseId }, bearer(viewer))).body);
      return ['Released', 'Release failed'].includes(d.release.status) ? d : undefined;
    }, 60_000);
    expect(done.release.status).toBe('Released');
    expect(done.changes).toContainEqual(expect.objectContaining({ actor: 'olivia', action: 'approve', comment: 'looks good' }));
    // The CLI sees the same record.
    const shown = await fleet.cli(viewer, ['release', 'show', releaseId]);
    expect(shown.stdout).toMatch(/olivia.*approve.*looks good/);
    // An action the state refuses is a 409 with the engine's one line.
    const again = await rpc('releaseAction', { id: releaseId, action: 'approve' }, { cookie });
    expect(again.status).toBe(409);
    expect(JSON.parse(again.body).error.split('\n')).toHaveLength(1);
  });

  it('refuses a revoked token on its very next request', async () => {
    const secret = await fleet.newToken('brief', 'viewer');
    const cookie = `fleetwave_session=${secret}`;
    expect((await send(url('/api/v1/session'), { ca, json: { token: secret } })).status).toBe(200);
    expect((await send(url('/api/v1/whoami'), { ca, headers: { cookie } })).status).toBe(200);
    expect((await fleet.cli(fleet.admin, ['token', 'revoke', 'brief'])).code).toBe(0);
    const after = await send(url('/api/v1/whoami'), { ca, headers: { cookie } });
    expect(after.status).toBe(401);
    expect(after.headers['set-cookie']).toEqual([expect.stringMatching(/^fleetwave_session=; .*Max-Age=0/)]);
    expect((await send(url('/'), { ca, headers: { cookie, accept: 'text/html' } })).status).toBe(303);
  });

  describe('an --insecure controller', () => {
    let open: ControllerProc;
    beforeAll(async () => {
      open = await startController({ dataDir: join(dir, 'insecure'), natsUrl: fleet.nats.url, logFile: join(dir, 'insecure.log'), args: ['--console-dir', consoleDir] });
    }, 60_000);
    afterAll(async () => {
      await open?.stop();
    });

    it('is open to everyone, as the made-up admin "insecure"', async () => {
      expect(open.httpUrl).toMatch(/^http:/);
      expect(JSON.parse((await send(`${open.httpUrl}/api/v1/whoami`)).body)).toEqual({ name: 'insecure', role: 'admin', insecure: true });
      expect((await send(`${open.httpUrl}/`)).status).toBe(200);
      expect((await send(`${open.httpUrl}/metrics`)).status).toBe(200);
      // proto3 JSON leaves out fields at their default: no apps is no `apps` key.
      expect(JSON.parse((await send(`${open.httpUrl}/api/v1/rpc/listApps`, { json: {} })).body)).toEqual({});
      // The content-type check still holds: a cross-site form cannot act on an open controller either.
      expect((await send(`${open.httpUrl}/api/v1/rpc/listApps`, { method: 'POST', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    });
  });
});
