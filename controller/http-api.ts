// The console's JSON API over HTTP: credentials (bearer header or session cookie), CSRF checks, sign-in, and an
// allowlist of admin RPCs called in-process on the unguarded admin service (so both APIs share one implementation).
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import {
  AgentUpgrade, BackOutRequest, GetAgentUpgradeRequest, GetReleaseRequest, HistoryRequest, HistoryResponse, ListAgentsRequest, ListAgentsResponse,
  ListAppsRequest, ListAppsResponse, ListEditionsRequest, ListEditionsResponse, ListInstancesRequest, ListInstancesResponse, ListReleasesRequest,
  ListReleasesResponse, ListRoutesRequest, ListRoutesResponse, ReleaseActionRequest, ReleaseDetail, type AdminServiceServer, type MessageFns,
} from '../proto/gen/fleetwave/v1/admin.js';
import { ACTOR_KEY } from './auth.js';
import type { Role } from './tokens.js';

/** The cookie the console's session lives in: the bearer token itself, so revoking the token ends the session at once. */
export const SESSION_COOKIE = 'fleetwave_session';
/** Requests carry filters and an action at most; a bigger body is refused before it is parsed. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Who the request is, as /api/v1/whoami and the session answer it. */
export interface HttpIdentity {
  name: string;
  role: Role;
  /** The controller runs --insecure: everything is open and this identity is made up. */
  insecure: boolean;
}

export const INSECURE_IDENTITY: HttpIdentity = { name: 'insecure', role: 'admin', insecure: true };

/** The token a request carries and where it came from (the cookie needs the Origin check, a header cannot be forged cross-site). */
export interface RequestCredential {
  token: string;
  via: 'bearer' | 'cookie' | 'none';
}

/** An HTTP answer other than 2xx, with its one-line reason (the body is `{"error": message}`). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** A unary RPC the HTTP API exposes: its request and response message codecs (proto3 JSON through ts-proto). */
interface RpcCodec {
  request: MessageFns<unknown>;
  response: MessageFns<unknown>;
}

const codec = <Req, Res>(request: MessageFns<Req>, response: MessageFns<Res>): RpcCodec => ({ request, response }) as RpcCodec;

/**
 * The admin RPCs open over HTTP, by handler name: what the console reads and the release actions. Token and agent
 * management, uploads and routing changes stay on gRPC, so a stolen browser session cannot mint tokens or revoke agents.
 */
export const HTTP_RPCS: Readonly<Record<string, RpcCodec>> = {
  listApps: codec(ListAppsRequest, ListAppsResponse),
  listEditions: codec(ListEditionsRequest, ListEditionsResponse),
  getRelease: codec(GetReleaseRequest, ReleaseDetail),
  listReleases: codec(ListReleasesRequest, ListReleasesResponse),
  listAgents: codec(ListAgentsRequest, ListAgentsResponse),
  listInstances: codec(ListInstancesRequest, ListInstancesResponse),
  history: codec(HistoryRequest, HistoryResponse),
  releaseAction: codec(ReleaseActionRequest, ReleaseDetail),
  backOut: codec(BackOutRequest, ReleaseDetail),
  listRoutes: codec(ListRoutesRequest, ListRoutesResponse),
  getAgentUpgrade: codec(GetAgentUpgradeRequest, AgentUpgrade),
};

export function isHttpRpc(method: string): boolean {
  return Object.hasOwn(HTTP_RPCS, method);
}

/** The bearer token of the Authorization header, else the session cookie's. */
export function credentialOf(headers: IncomingHttpHeaders): RequestCredential {
  const bearer = typeof headers.authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization) : null;
  if (bearer) return { token: bearer[1]!, via: 'bearer' };
  const cookie = cookieValue(headers.cookie, SESSION_COOKIE);
  return cookie ? { token: cookie, via: 'cookie' } : { token: '', via: 'none' };
}

/** One cookie's value from a Cookie header ('' when absent). */
export function cookieValue(header: string | undefined, name: string): string {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

/** No Max-Age or Expires: the session dies with the browser session; Secure whenever the controller speaks TLS. */
export function sessionCookie(token: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

/**
 * The CSRF refusal of a state-changing request, or null. A JSON content type cannot be sent cross-site without a CORS
 * preflight (which this server never grants); and unless the token came in a header (which another site cannot set),
 * an Origin header must name this very host.
 */
export function csrfRefusal(method: string, headers: IncomingHttpHeaders, via: RequestCredential['via']): HttpError | null {
  if (method !== 'POST' && method !== 'DELETE' && method !== 'PUT' && method !== 'PATCH') return null;
  const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return new HttpError(415, `${method} needs content-type: application/json`);
  const origin = headers.origin;
  if (via === 'bearer' || origin === undefined) return null;
  let originHost = '';
  try {
    originHost = new URL(origin).host;
  } catch {
    // "null" (a sandboxed frame, a file: page) and garbage are no origin of ours.
  }
  if (!originHost || originHost !== headers.host) return new HttpError(403, `origin ${origin} is not this controller (${headers.host ?? 'no host'})`);
  return null;
}

/** The HTTP status of a gRPC status code from the admin service. */
export function httpStatusOf(code: grpc.status | undefined): number {
  switch (code) {
    case grpc.status.INVALID_ARGUMENT:
      return 400;
    case grpc.status.NOT_FOUND:
      return 404;
    case grpc.status.ALREADY_EXISTS:
    case grpc.status.FAILED_PRECONDITION:
      return 409;
    case grpc.status.UNAUTHENTICATED:
      return 401;
    case grpc.status.PERMISSION_DENIED:
      return 403;
    case grpc.status.UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

/** The request body parsed as a JSON object (an empty body is `{}`); 413 past `max` bytes, 400 when not a JSON object. */
export async function readJsonObject(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new HttpError(413, `request body is ${declared} bytes; at most ${max} are accepted`, { connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `request body passes ${max} bytes`, { connection: 'close' });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'request body must be a JSON object');
  return value as Record<string, unknown>;
}

type UnaryHandler = (call: unknown, callback: grpc.sendUnaryData<unknown>) => void;

/**
 * Calls an allowlisted admin handler in-process with a synthetic unary call: the request from proto3 JSON, the actor
 * metadata set to the authenticated name (as guardService does for gRPC), and 'cancelled' emitted when `signal` aborts.
 * Resolves with the response as proto3 JSON; rejects with an HttpError carrying the mapped status.
 */
export function callAdminRpc(admin: AdminServiceServer, method: string, body: Record<string, unknown>, o: { actor: string; peer: string; signal?: AbortSignal }): Promise<unknown> {
  // hasOwn: '__proto__' or 'constructor' must not reach the table's prototype.
  const rpc = isHttpRpc(method) ? HTTP_RPCS[method] : undefined;
  if (!rpc) return Promise.reject(new HttpError(404, `no RPC '${method}' over HTTP; open ones: ${Object.keys(HTTP_RPCS).join(', ')}`));
  let request: unknown;
  try {
    request = rpc.request.fromJSON(body);
  } catch (err) {
    return Promise.reject(new HttpError(400, `${method}: ${(err as Error).message}`));
  }
  const metadata = new grpc.Metadata();
  metadata.set(ACTOR_KEY, o.actor);
  const call = Object.assign(new EventEmitter(), { request, metadata, cancelled: false, getPeer: () => o.peer, getPath: () => `/http/${method}` });
  o.signal?.addEventListener('abort', () => {
    call.cancelled = true;
    call.emit('cancelled');
  });
  const handler = (admin as unknown as Record<string, UnaryHandler>)[method]!;
  return new Promise((resolve, reject) =>
    handler(call, (err, value) => {
      if (err) reject(new HttpError(httpStatusOf(err.code), (err.details || 'admin call failed').split('\n')[0]!));
      else resolve(rpc.response.toJSON(value));
    }),
  );
}
