// Tokens and agent credentials in a real SQLite database: stored hashed, checked, expired, revoked.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
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

  it('issues one credential per agent, replaces it on re-enrolment, and never again once revoked', () => {
    const { tokens } = store();
    const first = tokens.issueAgentCredential('web-1', 'join');
    expect(tokens.verifyAgentCredential(first)).toBe('web-1');
    const second = tokens.issueAgentCredential('web-1', 'join');
    expect(tokens.verifyAgentCredential(first)).toBeNull();
    expect(tokens.verifyAgentCredential(second)).toBe('web-1');
    tokens.revokeAgent('web-1');
    expect(tokens.verifyAgentCredential(second)).toBeNull();
    expect(() => tokens.issueAgentCredential('web-1', 'join')).toThrow(AgentRevokedError);
    tokens.revokeAgent('never-enrolled');
    expect(() => tokens.issueAgentCredential('never-enrolled', 'join')).toThrow(AgentRevokedError);
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

  it('reads the secret of a Bearer header only', () => {
    expect(bearerOf('Bearer fwt_abc')).toBe('fwt_abc');
    expect(bearerOf('bearer  fwt_abc ')).toBe('fwt_abc');
    expect(bearerOf('Basic abc')).toBe('');
    expect(bearerOf(undefined)).toBe('');
  });
});
