// The console's only way to the controller: the JSON routes of docs/http-api.md, with the session cookie the sign-in
// page set (same origin, so fetch sends it). A 401 means the session is gone (revoked token, browser restarted): back to
// the sign-in page.
import type { Whoami } from './types.js';

/** An answer other than 2xx, with the server's one-line `error`. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    // The API refuses a state-changing request without this content type (CSRF guard): send it on every call.
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && !location.pathname.startsWith('/login')) {
    location.assign('/login');
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    // A proxy's HTML error page, say: its status says enough.
  }
  if (!res.ok) {
    const error = (json as { error?: string } | undefined)?.error ?? `${method} ${path} answered ${res.status}`;
    throw new ApiError(res.status, error);
  }
  return json as T;
}

/** One admin RPC (allowlisted by the server): `method` is the lowerCamel handler name, `request` its proto3 JSON. */
export function rpc<T>(method: string, request: object = {}): Promise<T> {
  return send<T>('POST', `/api/v1/rpc/${method}`, request);
}

export const whoami = () => send<Whoami>('GET', '/api/v1/whoami');
export const signIn = (token: string) => send<Whoami>('POST', '/api/v1/session', { token });
export const signOut = () => send<unknown>('DELETE', '/api/v1/session');
