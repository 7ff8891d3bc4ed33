// The controller's HTTP endpoint: the web console and its JSON API, package artifacts, the event stream (SSE),
// metrics and health.
//
// Secure mode (no --insecure): HTTPS with the gRPC listener's certificate, and every path but /healthz and the sign-in
// page's own files needs a credential, re-verified on every request so a revoked token stops at once: a bearer token
// (Authorization header) or the session cookie holding one. Viewer or above for the console, its API and /events;
// viewer or above or a metrics token for /metrics; an agent's credential (header only) for /artifacts.
// Insecure mode (--insecure): plaintext, everything open, every caller is the made-up admin 'insecure'.
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { badEventTypes, matchesEventFilter, type EventFilter } from '../common/event-types.js';
import type { Logger } from '../common/logger.js';
import { readFlagFile } from '../common/flag-file.js';
import type { AdminServiceServer } from '../proto/gen/fleetwave/v1/admin.js';
import { PermissionDeniedError, UnauthenticatedError, requirementOf, type Authenticator } from './auth.js';
import { SHA256_PATTERN, artifactPath } from './artifacts.js';
import type { EventHub } from './event-hub.js';
import {
  HttpError, INSECURE_IDENTITY, callAdminRpc, clearedSessionCookie, credentialOf, csrfRefusal, isHttpRpc, readJsonObject, sessionCookie,
  type HttpIdentity, type RequestCredential,
} from './http-api.js';
import { COMMON_HEADERS, CONSOLE_FILES, defaultConsoleDir, serveConsoleFile } from './http-console.js';
import type { ControllerMetrics } from './metrics.js';
import type { Role } from './tokens.js';

export interface HttpOptions {
  dataDir: string;
  hub: EventHub;
  metrics: ControllerMetrics;
  logger: Logger;
  /** The unguarded admin handlers the JSON API calls in-process (the HTTP side checks the role itself). */
  admin: AdminServiceServer;
  /** The console's built files; default dist/console/ beside the compiled controller. */
  consoleDir?: string;
  /** SSE comment sent this often so proxies keep the stream open. */
  keepAliveMs?: number;
  /** HTTPS with these PEM files; plaintext when absent (--insecure). */
  tls?: { certFile: string; keyFile: string } | null;
  /** Checks credentials; every path is open when absent (--insecure). */
  auth?: Authenticator | null;
}

/** Who may use a route: anyone, an enrolled agent's credential, or a token whose role allows this one. */
type Access = 'public' | 'agent' | Role;

/** What a route's handler gets: the request, its path, and who the caller turned out to be. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  credential: RequestCredential;
  /** Null on public and agent routes. */
  identity: HttpIdentity | null;
  peer: string;
}

interface Route {
  methods: readonly string[];
  access: Access;
  /** A browser (Accept: text/html) without a credential is sent to /login instead of a 401. */
  signInRedirect?: boolean;
  handle(x: Exchange): void | Promise<void>;
}

const GET = ['GET', 'HEAD'] as const;
/** Bytes an SSE reader may fall behind before its stream is closed. */
const SSE_BUFFER_CAP_BYTES = 8 * 1024 * 1024;

export function createHttpServer(o: HttpOptions): Server {
  const consoleDir = o.consoleDir ?? defaultConsoleDir();
  const secure = Boolean(o.tls);
  const routes = routeTable(o, consoleDir, secure);
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(o, routes, secure, req, res).catch((err: unknown) => {
      if (!(err instanceof HttpError)) o.logger.error({ err, url: req.url }, 'http request failed');
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) sendError(res, err.status, err.message, err.headers);
      else sendError(res, 500, 'internal error');
    });
  };
  const server = o.tls
    ? createHttpsServer({ cert: readFlagFile(o.tls.certFile, '--tls-cert'), key: readFlagFile(o.tls.keyFile, '--tls-key') }, handler)
    : createServer(handler);
  server.keepAliveTimeout = 5_000;
  return server;
}

function routeTable(o: HttpOptions, consoleDir: string, secure: boolean): { exact: Map<string, Route>; rpc: Route; artifact: Route } {
  const exact = new Map<string, Route>([
    ['/healthz', { methods: GET, access: 'public', handle: ({ res }) => sendText(res, 200, 'ok\n') }],
    ['/metrics', { methods: GET, access: 'metrics', handle: ({ res }) => serveMetrics(o, res) }],
    ['/events', { methods: ['GET'], access: 'viewer', handle: (x) => serveEvents(o, x, secure) }],
    ['/api/v1/whoami', { methods: ['GET'], access: 'viewer', handle: ({ res, identity }) => sendJson(res, 200, identity) }],
    ['/api/v1/session', { methods: ['POST', 'DELETE'], access: 'public', handle: (x) => session(o, secure, x) }],
  ]);
  for (const [path, entry] of Object.entries(CONSOLE_FILES)) {
    exact.set(path, { methods: GET, access: entry.public ? 'public' : 'viewer', signInRedirect: !entry.public, handle: ({ req, res }) => serveConsoleFile(consoleDir, entry, req, res) });
  }
  return {
    exact,
    rpc: { methods: ['POST'], access: 'viewer', handle: (x) => rpc(o, x) },
    artifact: { methods: GET, access: 'agent', handle: ({ req, res, path }) => serveArtifact(o, req, res, path.slice('/artifacts/'.length)) },
  };
}

/** The route of a path and the access it needs (an RPC's is its role in the gRPC table). */
function resolve(routes: ReturnType<typeof routeTable>, path: string): { route: Route; access: Access } | null {
  const exact = routes.exact.get(path);
  if (exact) return { route: exact, access: exact.access };
  if (path.startsWith('/api/v1/rpc/')) {
    const method = path.slice('/api/v1/rpc/'.length);
    // An unknown method still needs a credential first: its 404 tells nothing to a stranger.
    const needed = isHttpRpc(method) ? requirementOf(method) : 'viewer';
    return { route: routes.rpc, access: needed === 'public' ? 'viewer' : needed };
  }
  if (path.startsWith('/artifacts/')) return { route: routes.artifact, access: routes.artifact.access };
  return null;
}

async function handle(o: HttpOptions, routes: ReturnType<typeof routeTable>, secure: boolean, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://controller').pathname;
  const found = resolve(routes, path);
  if (!found) throw new HttpError(404, `no route ${path}`);
  const method = req.method ?? 'GET';
  if (!found.route.methods.includes(method)) throw new HttpError(405, `${method} ${path} is not allowed`, { allow: found.route.methods.join(', ') });
  const credential = credentialOf(req.headers);
  const csrf = csrfRefusal(method, req.headers, credential.via);
  if (csrf) throw csrf;
  const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
  const identity = authenticate(o, found.access, credential, `${method} ${path}`, peer, secure, found.route.signInRedirect === true && wantsHtml(req));
  await found.route.handle({ req, res, path, credential, identity, peer });
}

function wantsHtml(req: IncomingMessage): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

/** The caller's identity for `access`, or an HttpError: 401 (or 303 to /login for a browser page), 403 for a role too low. */
function authenticate(o: HttpOptions, access: Access, credential: RequestCredential, what: string, peer: string, secure: boolean, redirect: boolean): HttpIdentity | null {
  if (access === 'public') return null;
  if (!o.auth) return access === 'agent' ? null : INSECURE_IDENTITY;
  try {
    if (access === 'agent') {
      // Agents send their credential as a header; a cookie never carries one.
      o.auth.agentOfBearer(credential.via === 'bearer' ? `Bearer ${credential.token}` : undefined, peer);
      return null;
    }
    const id = o.auth.checkToken(credential.token, access, what, peer);
    return { name: id.name, role: id.role, insecure: false };
  } catch (err) {
    if (err instanceof UnauthenticatedError) {
      // A dead cookie is cleared, so the browser stops sending it and the sign-in page starts clean.
      const clear: Record<string, string> = credential.via === 'cookie' ? { 'set-cookie': clearedSessionCookie(secure) } : {};
      if (redirect) throw new HttpError(303, 'sign in first: /login', { location: '/login', ...clear });
      throw new HttpError(401, err.message, { 'www-authenticate': 'Bearer', ...clear });
    }
    if (err instanceof PermissionDeniedError) throw new HttpError(403, err.message);
    throw err;
  }
}

/** POST: sign in with `{"token": "..."}` (the cookie gets the token); DELETE: sign out (the cookie is cleared). */
async function session(o: HttpOptions, secure: boolean, x: Exchange): Promise<void> {
  if (x.req.method === 'DELETE') return sendJson(x.res, 200, {}, { 'set-cookie': clearedSessionCookie(secure) });
  const body = await readJsonObject(x.req);
  if (!o.auth) return sendJson(x.res, 200, INSECURE_IDENTITY);
  const token = typeof body.token === 'string' ? body.token.trim() : '';
  if (!token) throw new HttpError(400, 'sign-in needs {"token": "<a viewer, operator or admin token>"}');
  const identity = authenticate(o, 'viewer', { token, via: 'bearer' }, 'sign-in', x.peer, secure, false)!;
  sendJson(x.res, 200, identity, { 'set-cookie': sessionCookie(token, secure) });
}

async function rpc(o: HttpOptions, x: Exchange): Promise<void> {
  const method = x.path.slice('/api/v1/rpc/'.length);
  const body = await readJsonObject(x.req);
  const gone = new AbortController();
  x.res.on('close', () => {
    if (!x.res.writableFinished) gone.abort();
  });
  const answer = await callAdminRpc(o.admin, method, body, { actor: x.identity!.name, peer: x.peer, signal: gone.signal });
  sendJson(x.res, 200, answer);
}

function sendText(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value) + '\n';
  // no-store: answers hold fleet data and must not sit in a shared cache.
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Every refusal: one JSON line `{"error": "..."}`. */
function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message }, headers);
}

async function serveMetrics(o: HttpOptions, res: ServerResponse): Promise<void> {
  const body = await o.metrics.registry.metrics();
  sendText(res, 200, body, { 'content-type': o.metrics.registry.contentType });
}

function serveArtifact(o: HttpOptions, req: IncomingMessage, res: ServerResponse, sha256: string): void {
  if (!SHA256_PATTERN.test(sha256)) throw new HttpError(404, `no artifact ${sha256}`);
  const path = artifactPath(o.dataDir, sha256);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new HttpError(404, `no artifact ${sha256}`);
  }
  res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'application/octet-stream', 'content-length': size, etag: `"${sha256}"` });
  if (req.method === 'HEAD') return void res.end();
  const stream = createReadStream(path);
  stream.on('error', (err) => {
    o.logger.error({ err, sha256 }, 'artifact read failed');
    res.destroy(err);
  });
  stream.pipe(res);
}

/**
 * Server-sent events: one `event:` per CloudEvent, its type as the event name and the JSON as data. The stream is one
 * long request, so its token is checked again at every keep-alive: a revoked token's stream ends within one interval.
 */
function serveEvents(o: HttpOptions, x: Exchange, secure: boolean): void {
  const { req, res } = x;
  const filter = eventFilterOf(req);
  res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': fleetwave events\n\n');
  const unsubscribe = o.hub.subscribe((subject, event) => {
    if (!matchesEventFilter(filter, event.type, event.data)) return;
    // A reader that stops reading (a frozen tab, a stalled proxy) would make the controller buffer a fleet's events
    // without bound: past the cap the stream ends, and EventSource reconnects and refetches.
    if (res.writableLength > SSE_BUFFER_CAP_BYTES) {
      o.logger.warn({ peer: x.peer, buffered: res.writableLength }, 'event stream closed: the reader is not keeping up');
      unsubscribe();
      return void res.destroy();
    }
    res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify({ ...event, natssubject: subject })}\n\n`);
  });
  const keepAlive = setInterval(() => {
    if (!stillValid(o, x, secure)) return void res.end();
    res.write(': keep-alive\n\n');
  }, o.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const close = () => {
    clearInterval(keepAlive);
    unsubscribe();
  };
  req.on('close', close);
  res.on('close', close);
  res.on('error', close);
}

/**
 * `/events?types=T1,T2&app=A&release=R`: the events a reader wants (docs/events.md), so a view that shows one release
 * is not sent every drain progress of a 10,000-instance fleet. Types are exact or prefixes ending in '.'.
 */
function eventFilterOf(req: IncomingMessage): EventFilter {
  const query = new URL(req.url ?? '/', 'http://controller').searchParams;
  const types = (query.get('types') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
  const bad = badEventTypes(types);
  if (bad) throw new HttpError(400, bad);
  return { types, app: query.get('app')?.trim() ?? '', release: query.get('release')?.trim() ?? '' };
}

/** Whether the exchange's credential still opens `/events` (always, when --insecure). */
function stillValid(o: HttpOptions, x: Exchange, secure: boolean): boolean {
  try {
    authenticate(o, 'viewer', x.credential, `${x.req.method} ${x.path}`, x.peer, secure, false);
    return true;
  } catch {
    return false;
  }
}
