// Bearer tokens and agent credentials: made from 32 random bytes, kept in SQLite only as their sha256, checked per call.
//
// Tokens are random, not passwords, so a plain sha256 is enough to make a stolen database useless for logging in.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { BadInputError, FleetwaveError, NotFoundError } from '../common/errors.js';
import { AlreadyExistsError } from './store/store.js';

/** viewer: read; operator: also create/start/pause/approve; admin: also tokens and agent revocation; agent: a join token. */
export const ROLES = ['viewer', 'operator', 'admin', 'agent'] as const;
export type Role = (typeof ROLES)[number];
const RANK: Record<Role, number> = { agent: 0, viewer: 1, operator: 2, admin: 3 };

export interface TokenRecord {
  name: string;
  role: Role;
  createdUnixMs: number;
  /** 0: never. */
  expiresUnixMs: number;
  /** 0: not revoked. */
  revokedUnixMs: number;
  createdBy: string;
}

/** Who a valid bearer token belongs to. */
export interface Identity {
  name: string;
  role: Role;
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** Whether `role` may do what `needed` may. Join tokens (agent) open nothing of the admin API. */
export function roleAllows(role: Role, needed: Role): boolean {
  if (role === 'agent' || needed === 'agent') return role === needed;
  return RANK[role] >= RANK[needed];
}

export function parseRole(text: string): Role {
  const role = text.trim() as Role;
  if (!ROLES.includes(role)) throw new BadInputError(`role '${text}' must be one of ${ROLES.join(', ')}`);
  return role;
}

export function newSecret(prefix: 'fwt' | 'fwa'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** The secret of an `authorization: Bearer <secret>` header, or '' when there is none. */
export function bearerOf(header: unknown): string {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : '';
}

interface TokenRow {
  name: string;
  role: string;
  hash: Buffer;
  created_unix_ms: number;
  expires_unix_ms: number;
  revoked_unix_ms: number;
  created_by: string;
}

function toRecord(row: TokenRow): TokenRecord {
  return {
    name: row.name,
    role: row.role as Role,
    createdUnixMs: row.created_unix_ms,
    expiresUnixMs: row.expires_unix_ms,
    revokedUnixMs: row.revoked_unix_ms,
    createdBy: row.created_by,
  };
}

/**
 * The security tables, in the controller's database. Kept beside the main store (same connection, own
 * `CREATE TABLE IF NOT EXISTS`) so auth can change without touching the release schema's migrations.
 */
export class TokenStore {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number = () => Date.now(),
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS auth_tokens (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        hash BLOB NOT NULL UNIQUE,
        created_unix_ms INTEGER NOT NULL,
        expires_unix_ms INTEGER NOT NULL DEFAULT 0,
        revoked_unix_ms INTEGER NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL DEFAULT ''
      );
      CREATE TABLE IF NOT EXISTS agent_credentials (
        agent_id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        join_token TEXT NOT NULL,
        issued_unix_ms INTEGER NOT NULL,
        revoked_unix_ms INTEGER NOT NULL DEFAULT 0
      );`);
  }

  /** Makes a token; the secret is returned here and never stored. */
  createToken(o: { name: string; role: Role; ttlMs?: number; createdBy: string }): { secret: string; record: TokenRecord } {
    if (!TOKEN_NAME.test(o.name)) throw new BadInputError(`token name '${o.name}' must match [A-Za-z0-9][A-Za-z0-9._@-]* (at most 64 characters)`);
    const secret = newSecret('fwt');
    const now = this.now();
    const record: TokenRecord = { name: o.name, role: o.role, createdUnixMs: now, expiresUnixMs: o.ttlMs ? now + o.ttlMs : 0, revokedUnixMs: 0, createdBy: o.createdBy };
    const insert = this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM auth_tokens WHERE name = ?').get(o.name)) throw new AlreadyExistsError(`token '${o.name}' already exists`);
      this.db
        .prepare('INSERT INTO auth_tokens (name, role, hash, created_unix_ms, expires_unix_ms, created_by) VALUES (?, ?, ?, ?, ?, ?)')
        .run(record.name, record.role, hashSecret(secret), record.createdUnixMs, record.expiresUnixMs, record.createdBy);
    });
    insert();
    return { secret, record };
  }

  listTokens(): TokenRecord[] {
    return (this.db.prepare('SELECT * FROM auth_tokens ORDER BY created_unix_ms, name').all() as TokenRow[]).map(toRecord);
  }

  hasActiveAdmin(): boolean {
    return this.listTokens().some((t) => t.role === 'admin' && this.isLive(t));
  }

  revokeToken(name: string): TokenRecord {
    this.db.prepare('UPDATE auth_tokens SET revoked_unix_ms = ? WHERE name = ? AND revoked_unix_ms = 0').run(this.now(), name);
    const row = this.db.prepare('SELECT * FROM auth_tokens WHERE name = ?').get(name) as TokenRow | undefined;
    if (!row) throw new NotFoundError(`token '${name}' does not exist`);
    return toRecord(row);
  }

  /** The live (not revoked, not expired) token whose secret this is, or null. */
  verifyToken(secret: string): TokenRecord | null {
    if (!secret) return null;
    const hash = hashSecret(secret);
    const row = this.db.prepare('SELECT * FROM auth_tokens WHERE hash = ?').get(hash) as TokenRow | undefined;
    // The lookup is by hash; the constant-time compare keeps the check itself from leaking timing.
    if (!row || !timingSafeEqual(row.hash, hash)) return null;
    const record = toRecord(row);
    return this.isLive(record) ? record : null;
  }

  /** Issues (or re-issues) the credential of `agentId`; a revoked agent id cannot enrol again. */
  issueAgentCredential(agentId: string, joinToken: string): string {
    const secret = newSecret('fwa');
    const issue = this.db.transaction(() => {
      const row = this.db.prepare('SELECT revoked_unix_ms FROM agent_credentials WHERE agent_id = ?').get(agentId) as { revoked_unix_ms: number } | undefined;
      if (row && row.revoked_unix_ms > 0) throw new AgentRevokedError(agentId);
      this.db
        .prepare(
          `INSERT INTO agent_credentials (agent_id, hash, join_token, issued_unix_ms) VALUES (?, ?, ?, ?)
           ON CONFLICT(agent_id) DO UPDATE SET hash = excluded.hash, join_token = excluded.join_token, issued_unix_ms = excluded.issued_unix_ms`,
        )
        .run(agentId, hashSecret(secret), joinToken, this.now());
    });
    issue();
    return secret;
  }

  /** The agent id a live credential belongs to, or null. */
  verifyAgentCredential(secret: string): string | null {
    if (!secret) return null;
    const row = this.db.prepare('SELECT agent_id, revoked_unix_ms FROM agent_credentials WHERE hash = ?').get(hashSecret(secret)) as
      | { agent_id: string; revoked_unix_ms: number }
      | undefined;
    return row && row.revoked_unix_ms === 0 ? row.agent_id : null;
  }

  /** Revokes the agent's credential (recording the id even if it never enrolled, so it cannot later). */
  revokeAgent(agentId: string): void {
    this.db
      .prepare(
        `INSERT INTO agent_credentials (agent_id, hash, join_token, issued_unix_ms, revoked_unix_ms) VALUES (?, ?, '', ?, ?)
         ON CONFLICT(agent_id) DO UPDATE SET revoked_unix_ms = excluded.revoked_unix_ms`,
      )
      .run(agentId, hashSecret(newSecret('fwa')), this.now(), this.now());
  }

  private isLive(t: TokenRecord): boolean {
    return t.revokedUnixMs === 0 && (t.expiresUnixMs === 0 || t.expiresUnixMs > this.now());
  }
}

/** An agent id an admin revoked. */
export class AgentRevokedError extends FleetwaveError {
  constructor(readonly agentId: string) {
    super(`agent '${agentId}' is revoked`);
  }
}
