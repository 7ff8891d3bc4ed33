// The controller's HTTP endpoint: package artifacts, the event stream (SSE) for dashboards, metrics and health.
//
// Secure mode (no --insecure): HTTPS with the gRPC listener's certificate, and every path but /healthz needs a
// credential: a bearer token of role viewer or above for /events and /metrics, an agent's credential for /artifacts.
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from '../common/logger.js';
import { readFlagFile } from '../common/flag-file.js';
import { PermissionDeniedError, UnauthenticatedError, type Authenticator } from './auth.js';
import { SHA256_PATTERN, artifactPath } from './artifacts.js';
import type { EventHub } from './event-hub.js';
import type { ControllerMetrics } from './metrics.js';

export interface HttpOptions {
  dataDir: string;
  hub: EventHub;
  metrics: ControllerMetrics;
  logger: Logger;
  /** SSE comment sent this often so proxies keep the stream open. */
  keepAliveMs?: number;
  /** HTTPS with these PEM files; plaintext when absent (--insecure). */
  tls?: { certFile: string; keyFile: string } | null;
  /** Checks credentials; every path is open when absent (--insecure). */
  auth?: Authenticator | null;
}

export function createHttpServer(o: HttpOptions): Server {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    try {
      if (!authorized(o, req, res)) return;
      route(o, req, res);
    } catch (err) {
      o.logger.error({ err, url: req.url }, 'http request failed');
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.destroy();
    }
  };
  const server = o.tls
    ? createHttpsServer({ cert: readFlagFile(o.tls.certFile, '--tls-cert'), key: readFlagFile(o.tls.keyFile, '--tls-key') }, handler)
    : createServer(handler);
  server.keepAliveTimeout = 5_000;
  return server;
}

/** Answers 401/403 with one line and returns false when the path needs a credential the request lacks. */
function authorized(o: HttpOptions, req: IncomingMessage, res: ServerResponse): boolean {
  if (!o.auth) return true;
  const path = new URL(req.url ?? '/', 'http://controller').pathname;
  if (path === '/healthz') return true;
  const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
  const header = req.headers.authorization;
  try {
    if (path.startsWith('/artifacts/')) o.auth.agentOfBearer(header, peer);
    else o.auth.checkBearer(header, 'viewer', `GET ${path}`, peer);
    return true;
  } catch (err) {
    if (err instanceof UnauthenticatedError) reply(res, 401, `${err.message}\n`, { 'www-authenticate': 'Bearer' });
    else if (err instanceof PermissionDeniedError) reply(res, 403, `${err.message}\n`);
    else throw err;
    return false;
  }
}

function route(o: HttpOptions, req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://controller').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  if (path === '/healthz') return reply(res, 200, 'ok\n');
  if (path === '/metrics') return void serveMetrics(o, res);
  if (path === '/events') return serveEvents(o, req, res);
  const artifact = /^\/artifacts\/([^/]+)$/.exec(path);
  if (artifact) return serveArtifact(o, req, res, artifact[1]!);
  reply(res, 404, 'not found\n');
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

async function serveMetrics(o: HttpOptions, res: ServerResponse): Promise<void> {
  try {
    const body = await o.metrics.registry.metrics();
    reply(res, 200, body, { 'content-type': o.metrics.registry.contentType });
  } catch (err) {
    o.logger.error({ err }, 'metrics failed');
    reply(res, 500, 'metrics failed\n');
  }
}

function serveArtifact(o: HttpOptions, req: IncomingMessage, res: ServerResponse, sha256: string): void {
  if (!SHA256_PATTERN.test(sha256)) return reply(res, 404, 'not found\n');
  const path = artifactPath(o.dataDir, sha256);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return reply(res, 404, 'not found\n');
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, etag: `"${sha256}"` });
  if (req.method === 'HEAD') return void res.end();
  const stream = createReadStream(path);
  stream.on('error', (err) => {
    o.logger.error({ err, sha256 }, 'artifact read failed');
    res.destroy(err);
  });
  stream.pipe(res);
}

/** Server-sent events: one `event:` per CloudEvent, its type as the event name and the JSON as data. */
function serveEvents(o: HttpOptions, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': fleetwave events\n\n');
  const unsubscribe = o.hub.subscribe((subject, event) => {
    res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify({ ...event, natssubject: subject })}\n\n`);
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), o.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const close = () => {
    clearInterval(keepAlive);
    unsubscribe();
  };
  req.on('close', close);
  res.on('error', close);
}
