// The pure parts of the HTTP API: where the credential comes from, the session cookie, CSRF refusals, status mapping.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { requirementOf } from './auth.js';
import { HTTP_RPCS, clearedSessionCookie, cookieValue, credentialOf, csrfRefusal, httpStatusOf, sessionCookie } from './http-api.js';

describe('credentialOf', () => {
  it.each([
    [{ authorization: 'Bearer fwt_a' }, { token: 'fwt_a', via: 'bearer' }],
    [{ authorization: 'Bearer fwt_a', cookie: 'fleetwave_session=fwt_b' }, { token: 'fwt_a', via: 'bearer' }],
    [{ cookie: 'theme=dark; fleetwave_session=fwt_b; x=1' }, { token: 'fwt_b', via: 'cookie' }],
    [{ authorization: 'Basic abc', cookie: 'fleetwave_session=fwt_b' }, { token: 'fwt_b', via: 'cookie' }],
    [{ cookie: 'fleetwave_session=' }, { token: '', via: 'none' }],
    [{ cookie: 'xfleetwave_session=fwt_c' }, { token: '', via: 'none' }],
    [{}, { token: '', via: 'none' }],
  ])('%j → %j', (headers, expected) => {
    expect(credentialOf(headers)).toEqual(expected);
  });

  it('reads one cookie among several', () => {
    expect(cookieValue('a=1;b=2 ; c = 3', 'c')).toBe('3');
    expect(cookieValue(undefined, 'c')).toBe('');
  });
});

describe('the session cookie', () => {
  it('is HttpOnly, SameSite=Strict, path /, Secure over TLS, and without a lifetime (dies with the browser session)', () => {
    expect(sessionCookie('fwt_x', true)).toBe('fleetwave_session=fwt_x; Path=/; HttpOnly; SameSite=Strict; Secure');
    expect(sessionCookie('fwt_x', false)).toBe('fleetwave_session=fwt_x; Path=/; HttpOnly; SameSite=Strict');
    expect(sessionCookie('fwt_x', true)).not.toMatch(/Max-Age|Expires/i);
    expect(clearedSessionCookie(true)).toBe('fleetwave_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure');
  });
});

describe('csrfRefusal', () => {
  const json = { 'content-type': 'application/json', host: 'ctl:7401' };
  it.each([
    ['GET', {}, 'cookie', null],
    ['POST', { host: 'ctl:7401' }, 'cookie', 415],
    ['POST', { 'content-type': 'text/plain', host: 'ctl:7401' }, 'bearer', 415],
    ['DELETE', { 'content-type': 'application/x-www-form-urlencoded' }, 'none', 415],
    ['POST', { ...json, 'content-type': 'application/json; charset=utf-8' }, 'cookie', null],
    ['POST', json, 'cookie', null],
    ['POST', { ...json, origin: 'https://ctl:7401' }, 'cookie', null],
    ['POST', { ...json, origin: 'https://ctl:7402' }, 'cookie', 403],
    ['POST', { ...json, origin: 'https://evil.example' }, 'cookie', 403],
    ['POST', { ...json, origin: 'null' }, 'cookie', 403],
    ['POST', { ...json, origin: 'https://evil.example' }, 'none', 403],
    ['POST', { ...json, origin: 'https://evil.example' }, 'bearer', null],
  ] as const)('%s %j with a %s credential → %s', (method, headers, via, status) => {
    expect(csrfRefusal(method, headers, via)?.status ?? null).toBe(status);
  });
});

describe('httpStatusOf', () => {
  it.each([
    [grpc.status.INVALID_ARGUMENT, 400],
    [grpc.status.NOT_FOUND, 404],
    [grpc.status.ALREADY_EXISTS, 409],
    [grpc.status.FAILED_PRECONDITION, 409],
    [grpc.status.UNAUTHENTICATED, 401],
    [grpc.status.PERMISSION_DENIED, 403],
    [grpc.status.UNAVAILABLE, 503],
    [grpc.status.INTERNAL, 500],
    [undefined, 500],
  ])('%s → %s', (code, status) => {
    expect(httpStatusOf(code)).toBe(status);
  });
});

describe('the RPC allowlist', () => {
  it('holds the console reads and the release actions, nothing that manages tokens, agents or uploads', () => {
    expect(Object.keys(HTTP_RPCS).sort()).toEqual(
      ['backOut', 'getAgentUpgrade', 'getRelease', 'history', 'listAgents', 'listApps', 'listEditions', 'listInstances', 'listReleases', 'listRoutes', 'releaseAction'].sort(),
    );
    expect(Object.keys(HTTP_RPCS).map((m) => requirementOf(m)).every((r) => r === 'viewer' || r === 'operator')).toBe(true);
  });
});
