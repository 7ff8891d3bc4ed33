// Tokens and agent credentials in a real SQLite database: stored hashed, checked, expired, revoked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compileIdPattern, groupRefusal, JoinRefusedError } from './join-scopes.js';
import { AlreadyExistsError } from './store/store.js';
import { AgentRevokedError, bearerOf, hashSecret, roleAllows, TokenStore } from './tokens.js';

function store(now = { t: 1_000 }) {
  const db = new Database(':memory:');
  return { tokens: new TokenStore(db, () => now.t), db, now };
}

describe('TokenStore', () => {
  it('keeps only the sha256 of a token and finds it by its secret', () => {
    const { tokens, db } = store();
    const { secret, record } = tokens.createToken({ name: 'ops', role: 'operator', createdBy: 'admin' });
    expect(secret).toMatch(/^fwt_[A-Za-z0-9_-]{43}$/);
    const row = db.prepare('SELECT hash FROM auth_tokens WHERE name = ?').get('ops') as { hash: Buffer };
    expect(row.hash.equals(hashSecret(secret))).toBe(true);
    expect(JSON.stringify(db.prepare('SELECT * FROM auth_tokens').all())).not.toContain(secret);
    expect(tokens.verifyToken(secret)).toEqual(record);
    expect(tokens.verifyToken(secret + 'x')).toBeNull();
    expect(tokens.verifyToken('')).toBeNull();
    expect(() => tokens.createToken({ name: 'ops', role: 'viewer', createdBy: 'admin' })).toThrow(AlreadyExistsError);
    expect(() => tokens.createToken({ name: 'bad name', role: 'viewer', createdBy: 'admin' })).toThrow(/token name/);
  });

  it('refuses revoked and expired tokens', () => {
    const { tokens, now } = store();
    const revoked = tokens.createToken({ name: 'r', role: 'admin', createdBy: 'x' });
    const expiring = tokens.createToken({ name: 'e', role: 'viewer', ttlMs: 500, createdBy: 'x' });
    expect(tokens.hasActiveAdmin()).toBe(true);
    tokens.revokeToken('r');
    expect(tokens.verifyToken(revoked.secret)).toBeNull();
    expect(tokens.hasActiveAdmin()).toBe(false);
    expect(tokens.verifyToken(expiring.secret)?.name).toBe('e');
    now.t += 501;
    expect(tokens.verifyToken(expiring.secret)).toBeNull();
    expect(() => tokens.revokeToken('missing')).toThrow(/does not exist/);
  });

  it('issues one credential per agent id, refuses a second enrolment of a live id, and never enrols a revoked id', () => {
    const { tokens } = store();
    const join = tokens.createToken({ name: 'join', role: 'agent', createdBy: 'x' }).record;
    const first = tokens.enrollAgent('web-1', join);
    expect(tokens.verifyAgentCredential(first)).toEqual({ agentId: 'web-1', group: '' });
    // The takeover of issue 8: the same (or any) join token for an id that has a live credential.
    expect(() => tokens.enrollAgent('web-1', join)).toThrow(/already has a live credential.*fleetwave agent rekey web-1/);
    expect(tokens.verifyAgentCredential(first)?.agentId).toBe('web-1');
    tokens.revokeAgent('web-1');
    expect(tokens.verifyAgentCredential(first)).toBeNull();
    expect(() => tokens.enrollAgent('web-1', join)).toThrow(AgentRevokedError);
    tokens.revokeAgent('never-enrolled');
    expect(() => tokens.enrollAgent('never-enrolled', join)).toThrow(AgentRevokedError);
  });

  it('re-keys an id: the old credential dies, only the printed single-use token enrols it, once', () => {
    const { tokens } = store();
    const join = tokens.createToken({ name: 'join', role: 'agent', createdBy: 'x', scopes: { group: 'web' } }).record;
    const old = tokens.enrollAgent('web-1', join);
    const rekey = tokens.rekeyAgent('web-1', { ttlMs: 60_000, createdBy: 'admin' });
    expect(rekey.record).toMatchObject({ role: 'agent', maxUses: 1, idPattern: 'web-1', group: 'web', createdBy: 'admin' });
    expect(tokens.verifyAgentCredential(old)).toBeNull();
    // Until the real host enrols, no other join token gets the id, and the re-key token gets no other id.
    expect(() => tokens.enrollAgent('web-1', join)).toThrow(JoinRefusedError);
    const rekeyJoin = tokens.verifyToken(rekey.secret)!;
    expect(() => tokens.enrollAgent('web-2', rekeyJoin)).toThrow(/allows agent ids matching 'web-1'/);
    const fresh = tokens.enrollAgent('web-1', rekeyJoin);
    expect(tokens.verifyAgentCredential(fresh)).toEqual({ agentId: 'web-1', group: 'web' });
    expect(() => tokens.enrollAgent('web-1', tokens.verifyToken(rekey.secret)!)).toThrow(JoinRefusedError);
    // A revoked id comes back only through rekey.
    tokens.revokeAgent('web-1');
    const again = tokens.rekeyAgent('web-1', { ttlMs: 60_000, createdBy: 'admin' });
    expect(tokens.verifyAgentCredential(tokens.enrollAgent('web-1', tokens.verifyToken(again.secret)!))?.agentId).toBe('web-1');
    expect(() => tokens.rekeyAgent('nobody', { ttlMs: 1, createdBy: 'admin' })).toThrow(/never enrolled/);
  });

  it('applies join-token scopes: id pattern and a use count', () => {
    const { tokens } = store();
    const web = tokens.createToken({ name: 'web', role: 'agent', createdBy: 'x', scopes: { idPattern: 'web-*', maxUses: 2 } }).record;
    expect(() => tokens.enrollAgent('db-1', web)).toThrow(expect.objectContaining({ kind: 'permission' }));
    tokens.enrollAgent('web-1', web);
    tokens.enrollAgent('web-2', web);
    expect(() => tokens.enrollAgent('web-3', web)).toThrow(expect.objectContaining({ kind: 'exhausted' }));
    expect(tokens.listTokens().find((t) => t.name === 'web')).toMatchObject({ maxUses: 2, uses: 2 });
    expect(() => tokens.createToken({ name: 'v', role: 'viewer', createdBy: 'x', scopes: { maxUses: 1 } })).toThrow(/join tokens/);
    expect(() => tokens.createToken({ name: 'p', role: 'agent', createdBy: 'x', scopes: { idPattern: 'web/*' } })).toThrow(/--id-pattern/);
  });

  it('counts a single-use token once across two connections to the same database file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwave-tokens-'));
    try {
      const a = new TokenStore(new Database(join(dir, 'db')));
      const b = new TokenStore(new Database(join(dir, 'db')));
      const once = a.createToken({ name: 'once', role: 'agent', createdBy: 'x', scopes: { maxUses: 1 } }).record;
      // Both read the token as unused before either enrols: only the conditional update decides.
      const outcomes = [() => a.enrollAgent('x-1', once), () => b.enrollAgent('x-2', once)].map((enrol) => {
        try {
          enrol();
          return 'ok';
        } catch (err) {
          return (err as JoinRefusedError).kind;
        }
      });
      expect(outcomes.sort()).toEqual(['exhausted', 'ok']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('join scopes', () => {
  it('matches id globs exactly and checks the Hello group', () => {
    expect(compileIdPattern('web-*').test('web-12')).toBe(true);
    expect(compileIdPattern('web-*').test('xweb-1')).toBe(false);
    expect(compileIdPattern('a?').test('a2')).toBe(true);
    expect(compileIdPattern('a.b').test('axb')).toBe(false);
    expect(groupRefusal('', 'blue', 'a1')).toBeNull();
    expect(groupRefusal('blue', 'blue', 'a1')).toBeNull();
    expect(groupRefusal('default', '', 'a1')).toBeNull();
    expect(groupRefusal('blue', 'red', 'a1')).toMatch(/enrolled for group 'blue' and may not declare group 'red'/);
  });
});

describe('roles and headers', () => {
  it('orders viewer < operator < admin and keeps join tokens out of the admin API', () => {
    expect(roleAllows('admin', 'operator')).toBe(true);
    expect(roleAllows('operator', 'viewer')).toBe(true);
    expect(roleAllows('viewer', 'operator')).toBe(false);
    expect(roleAllows('operator', 'admin')).toBe(false);
    expect(roleAllows('agent', 'viewer')).toBe(false);
    expect(roleAllows('admin', 'agent')).toBe(false);
  });

  it('lets a router token watch and ack the routing and nothing else; admins may too, viewers and operators not', () => {
    expect(roleAllows('router', 'router')).toBe(true);
    expect(roleAllows('admin', 'router')).toBe(true);
    expect(roleAllows('operator', 'router')).toBe(false);
    expect(roleAllows('viewer', 'router')).toBe(false);
    expect(roleAllows('agent', 'router')).toBe(false);
    expect(roleAllows('router', 'viewer')).toBe(false);
    expect(roleAllows('router', 'agent')).toBe(false);
  });

  it('lets a metrics token read /metrics and nothing else; viewers and above may read it too, routers and agents not', () => {
    const roles = ['viewer', 'operator', 'admin', 'agent', 'router', 'metrics'] as const;
    expect(roles.filter((r) => roleAllows(r, 'metrics'))).toEqual(['viewer', 'operator', 'admin', 'metrics']);
    expect(roles.filter((r) => roleAllows('metrics', r))).toEqual(['metrics']);
  });

  it('reads the secret of a Bearer header only', () => {
    expect(bearerOf('Bearer fwt_abc')).toBe('fwt_abc');
    expect(bearerOf('bearer  fwt_abc ')).toBe('fwt_abc');
    expect(bearerOf('Basic abc')).toBe('');
    expect(bearerOf(undefined)).toBe('');
  });
});
