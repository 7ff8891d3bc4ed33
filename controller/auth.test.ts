// The role guard around a service: every handler checks the token's role first and stamps the actor with its name.
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { ACTOR_KEY, Authenticator, guardService, requirementOf } from './auth.js';
import { TokenStore } from './tokens.js';

const log = createLogger({ name: 'auth-test', level: 'silent' });

function setup() {
  const tokens = new TokenStore(new Database(':memory:'));
  const secret = (role: 'viewer' | 'operator' | 'admin' | 'agent' | 'router') => tokens.createToken({ name: `${role}-1`, role, createdBy: 't' }).secret;
  const seen: string[] = [];
  const service = guardService(
    {
      listApps: (call: { metadata: grpc.Metadata }, cb: (e: unknown, r?: unknown) => void) => (seen.push(String(call.metadata.get(ACTOR_KEY)[0])), cb(null, {})),
      releaseAction: (call: { metadata: grpc.Metadata }, cb: (e: unknown, r?: unknown) => void) => (seen.push(String(call.metadata.get(ACTOR_KEY)[0])), cb(null, {})),
      enroll: (_call: unknown, cb: (e: unknown, r?: unknown) => void) => cb(null, { credential: 'c' }),
      ackRouting: (_call: unknown, cb: (e: unknown, r?: unknown) => void) => cb(null, {}),
      addRoute: (_call: unknown, cb: (e: unknown, r?: unknown) => void) => cb(null, {}),
      listRoutes: (_call: unknown, cb: (e: unknown, r?: unknown) => void) => cb(null, {}),
    },
    new Authenticator(tokens, log),
  );
  const call = (method: keyof typeof service, token: string) =>
    new Promise<grpc.status>((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set(ACTOR_KEY, 'someone-else');
      if (token) metadata.set('authorization', `Bearer ${token}`);
      const fake = { metadata, getPeer: () => 'test', emit: () => {} };
      (service[method] as (c: unknown, cb: (e: { code: grpc.status } | null) => void) => void)(fake, (err) => resolve(err ? err.code : grpc.status.OK));
    });
  return { secret, call, seen };
}

describe('guardService', () => {
  it('lets each role do what the table says, and no more', async () => {
    const { secret, call, seen } = setup();
    expect(await call('listApps', '')).toBe(grpc.status.UNAUTHENTICATED);
    expect(await call('listApps', 'fwt_wrong')).toBe(grpc.status.UNAUTHENTICATED);
    expect(await call('listApps', secret('agent'))).toBe(grpc.status.PERMISSION_DENIED);
    const viewer = secret('viewer');
    expect(await call('listApps', viewer)).toBe(grpc.status.OK);
    expect(await call('releaseAction', viewer)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call('releaseAction', secret('operator'))).toBe(grpc.status.OK);
    expect(await call('enroll', '')).toBe(grpc.status.OK);
    // The handler sees the token's name as the actor, not what the client claimed.
    expect(seen).toEqual(['viewer-1', 'operator-1']);
  });

  it('opens the routing watch and acks to router tokens (and admins) only, and routing rules to operators', async () => {
    const { secret, call } = setup();
    const [router, admin, viewer, operator] = (['router', 'admin', 'viewer', 'operator'] as const).map(secret);
    expect(await call('ackRouting', router!)).toBe(grpc.status.OK);
    expect(await call('ackRouting', admin!)).toBe(grpc.status.OK);
    expect(await call('ackRouting', viewer!)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call('ackRouting', operator!)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call('listApps', router!)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call('listRoutes', router!)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call('listRoutes', viewer!)).toBe(grpc.status.OK);
    expect(await call('addRoute', viewer!)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await call('addRoute', operator!)).toBe(grpc.status.OK);
    expect(requirementOf('watchRouting')).toBe('router');
    expect(requirementOf('addRoute')).toBe('operator');
    expect(requirementOf('removeRoute')).toBe('operator');
    expect(requirementOf('listRoutes')).toBe('viewer');
  });

  it('closes RPCs missing from the table to all but admins, except reads', () => {
    expect(requirementOf('releaseAction')).toBe('operator');
    // app apply changes what a release runs, like creating one.
    expect(requirementOf('updateApp')).toBe('operator');
    expect(requirementOf('listGroups')).toBe('viewer');
    expect(requirementOf('deleteGroup')).toBe('admin');
    expect(requirementOf('enroll')).toBe('public');
  });
});
