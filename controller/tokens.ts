// Bearer tokens and agent credentials: made from 32 random bytes, kept in SQLite only as their sha256, checked per call.
//
// Tokens are random, not passwords, so a plain sha256 is enough to make a stolen database useless for logging in.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { BadInputError, FleetwaveError, NotFoundError } from '../common/errors.js';
import { compileIdPattern, JoinRefusedError, type JoinScopes } from './join-scopes.js';
import { AlreadyExistsError } from './store/store.js';

/**
 * viewer: read; operator: also create/start/pause/approve and routing rules; admin: also tokens and agent revocation
 * (and everything else); agent: a join token; router: a `fleetwave router`, which may only watch the routing and ack it;
 * metrics: a Prometheus scraper, which may only read /metrics.
 */
export const ROLES = ['viewer', 'operator', 'admin', 'agent', 'router', 'metrics'] as const;
export type Role = (typeof ROLES)[number];
/** The ranked roles; agent and router stand apart (see roleAllows). */
const RANK: Record<'viewer' | 'operator' | 'admin', number> = { viewer: 1, operator: 2, admin: 3 };

export interface TokenRecord {
  name: string;
  role: Role;
  createdUnixMs: number;
  /** 0: never. */
  expiresUnixMs: number;
  /** 0: not revoked. */
  revokedUnixMs: number;
  createdBy: string;
  /** Join tokens: enrolments allowed (0: unlimited) and had so far. */
  maxUses: number;
  uses: number;
  /** Join tokens: glob the agent id must match ('' any), group the agent must declare at Hello ('' any). */
  idPattern: string;
  group: string;
}

/** What an agent credential allows: speaking as this id, and (when set) only in this group. */
export interface AgentIdentity {
  agentId: string;
  /** '' any group. */
  group: string;
}

/** Lifetime of the join token `agent rekey` prints when the admin gives none. */
export const REKEY_TTL_MS = 24 * 3_600_000;

/** Who a valid bearer token belongs to. */
export interface Identity {
  name: string;
  role: Role;
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/**
 * Whether `role` may do what `needed` may. Join tokens (agent) open nothing of the admin API. A router token opens the
 * routing watch and acks alone (a stolen one reveals the routing table, changes nothing); admin opens them too. A
 * metrics token opens /metrics alone (a scraper's token sits in a Prometheus config); viewer and above open it too.
 */
export function roleAllows(role: Role, needed: Role): boolean {
  if (role === 'agent' || needed === 'agent') return role === needed;
  if (needed === 'router') return role === 'router' || role === 'admin';
  if (needed === 'metrics') return role !== 'router';
  if (role === 'router' || role === 'metrics') return false;
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
  max_uses: number;
  uses: number;
  id_pattern: string;
  agent_group: string;
}

function toRecord(row: TokenRow): TokenRecord {
  return {
    name: row.name,
    role: row.role as Role,
    createdUnixMs: row.created_unix_ms,
    expiresUnixMs: row.expires_unix_ms,
    revokedUnixMs: row.revoked_unix_ms,
    createdBy: row.created_by,
    maxUses: row.max_uses,
    uses: row.uses,
    idPattern: row.id_pattern,
    group: row.agent_group,
  };
}

/** Columns added after the first release of these tables, added in place to older databases. */
const ADDED_COLUMNS: Array<[table: string, column: string, definition: string]> = [
  ['auth_tokens', 'max_uses', 'INTEGER NOT NULL DEFAULT 0'],
  ['auth_tokens', 'uses', 'INTEGER NOT NULL DEFAULT 0'],
  ['auth_tokens', 'id_pattern', "TEXT NOT NULL DEFAULT ''"],
  ['auth_tokens', 'agent_group', "TEXT NOT NULL DEFAULT ''"],
  // The join token's group scope, kept with the credential so Hello can be checked against it.
  ['agent_credentials', 'agent_group', "TEXT NOT NULL DEFAULT ''"],
  // Set by `agent rekey`: only this join token may enrol the id until it does.
  ['agent_credentials', 'rekey_token', "TEXT NOT NULL DEFAULT ''"],
  // The public NATS user nkey issued at enrolment (--nats-agent-users); '' when none or voided by revoke/rekey.
  ['agent_credentials', 'nats_nkey', "TEXT NOT NULL DEFAULT ''"],
];

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
    for (const [table, column, definition] of ADDED_COLUMNS) {
      const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }

  /** Makes a token; the secret is returned here and never stored. */
  createToken(o: { name: string; role: Role; ttlMs?: number; createdBy: string; scopes?: Partial<JoinScopes> }): { secret: string; record: TokenRecord } {
    if (!TOKEN_NAME.test(o.name)) throw new BadInputError(`token name '${o.name}' must match [A-Za-z0-9][A-Za-z0-9._@-]* (at most 64 characters)`);
    const scopes: JoinScopes = { maxUses: o.scopes?.maxUses ?? 0, idPattern: o.scopes?.idPattern ?? '', group: o.scopes?.group ?? '' };
    if (o.role !== 'agent' && (scopes.maxUses || scopes.idPattern || scopes.group)) throw new BadInputError('--uses, --id-pattern and --group scope join tokens (--role agent) only');
    if (scopes.idPattern) compileIdPattern(scopes.idPattern);
    const secret = newSecret('fwt');
    const now = this.now();
    const record: TokenRecord = {
      name: o.name, role: o.role, createdUnixMs: now, expiresUnixMs: o.ttlMs ? now + o.ttlMs : 0, revokedUnixMs: 0, createdBy: o.createdBy, ...scopes, uses: 0,
    };
    const insert = this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM auth_tokens WHERE name = ?').get(o.name)) throw new AlreadyExistsError(`token '${o.name}' already exists`);
      this.db
        .prepare(
          `INSERT INTO auth_tokens (name, role, hash, created_unix_ms, expires_unix_ms, created_by, max_uses, id_pattern, agent_group)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(record.name, record.role, hashSecret(secret), record.createdUnixMs, record.expiresUnixMs, record.createdBy, scopes.maxUses, scopes.idPattern, scopes.group);
    });
    insert();
    return { secret, record };
  }

  /** Runs `fn` in one transaction: what it writes to the token tables is undone if it throws. */
  inTransaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
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

  /**
   * Trades a live join token for `agentId`'s credential, in one immediate transaction so the use count and the
   * id's state are read and written together (two concurrent enrolments with a single-use token: one wins).
   * Refused: a used-up token, an id outside its pattern, a revoked id, an id with a live credential (only
   * `agent rekey` replaces one), and an id awaiting re-keying with any token but the one `agent rekey` printed.
   */
  enrollAgent(agentId: string, join: TokenRecord, natsNkey = ''): string {
    const secret = newSecret('fwa');
    const enrol = this.db.transaction(() => {
      if (join.idPattern && !compileIdPattern(join.idPattern).test(agentId)) {
        throw new JoinRefusedError('permission', `join token '${join.name}' allows agent ids matching '${join.idPattern}', not '${agentId}'`);
      }
      const row = this.db.prepare('SELECT revoked_unix_ms, rekey_token FROM agent_credentials WHERE agent_id = ?').get(agentId) as
        | { revoked_unix_ms: number; rekey_token: string }
        | undefined;
      if (row && row.revoked_unix_ms > 0) throw new AgentRevokedError(agentId);
      if (row && row.rekey_token !== join.name) {
        const why = row.rekey_token ? 'awaits re-keying with the token `fleetwave agent rekey` printed' : 'already has a live credential';
        throw new JoinRefusedError('exists', `agent '${agentId}' ${why}; to replace its credential an admin runs \`fleetwave agent rekey ${agentId}\``);
      }
      // The use is counted by a conditional update, so the check and the count cannot be split by another enrolment.
      const counted = this.db.prepare('UPDATE auth_tokens SET uses = uses + 1 WHERE name = ? AND (max_uses = 0 OR uses < max_uses)').run(join.name);
      if (counted.changes !== 1) throw new JoinRefusedError('exhausted', `join token '${join.name}' has no uses left (${join.maxUses} allowed)`);
      this.db
        .prepare(
          `INSERT INTO agent_credentials (agent_id, hash, join_token, issued_unix_ms, agent_group, nats_nkey) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(agent_id) DO UPDATE SET hash = excluded.hash, join_token = excluded.join_token, issued_unix_ms = excluded.issued_unix_ms,
             agent_group = excluded.agent_group, rekey_token = '', nats_nkey = excluded.nats_nkey`,
        )
        .run(agentId, hashSecret(secret), join.name, this.now(), join.group, natsNkey);
    });
    enrol.immediate();
    return secret;
  }

  /**
   * `agent rekey`: voids the id's credential (or lifts its revocation) and makes a join token that only this id may
   * use, once; until it is used no other join token can enrol the id. The group scope of the old credential carries over.
   */
  rekeyAgent(agentId: string, o: { ttlMs: number; createdBy: string }): { secret: string; record: TokenRecord } {
    const rekey = this.db.transaction(() => {
      const row = this.db.prepare('SELECT agent_group FROM agent_credentials WHERE agent_id = ?').get(agentId) as { agent_group: string } | undefined;
      if (!row) throw new NotFoundError(`agent '${agentId}' never enrolled; enrol it with a join token`);
      const name = `rekey-${agentId.slice(0, 40)}-${randomBytes(3).toString('hex')}`;
      const created = this.createToken({ name, role: 'agent', ttlMs: o.ttlMs, createdBy: o.createdBy, scopes: { maxUses: 1, idPattern: agentId, group: row.agent_group } });
      // A fresh random hash whose secret nobody holds: the old credential stops working at once.
      this.db
        .prepare("UPDATE agent_credentials SET hash = ?, revoked_unix_ms = 0, rekey_token = ?, nats_nkey = '' WHERE agent_id = ?")
        .run(hashSecret(newSecret('fwa')), name, agentId);
      return created;
    });
    return rekey.immediate();
  }

  /** Who a live credential speaks for, or null. */
  verifyAgentCredential(secret: string): AgentIdentity | null {
    if (!secret) return null;
    const row = this.db.prepare('SELECT agent_id, revoked_unix_ms, rekey_token, agent_group FROM agent_credentials WHERE hash = ?').get(hashSecret(secret)) as
      | { agent_id: string; revoked_unix_ms: number; rekey_token: string; agent_group: string }
      | undefined;
    return row && row.revoked_unix_ms === 0 && !row.rekey_token ? { agentId: row.agent_id, group: row.agent_group } : null;
  }

  /** Revokes the agent's credential (recording the id even if it never enrolled, so it cannot later). */
  revokeAgent(agentId: string): void {
    this.db
      .prepare(
        `INSERT INTO agent_credentials (agent_id, hash, join_token, issued_unix_ms, revoked_unix_ms) VALUES (?, ?, '', ?, ?)
         ON CONFLICT(agent_id) DO UPDATE SET revoked_unix_ms = excluded.revoked_unix_ms, nats_nkey = ''`,
      )
      .run(agentId, hashSecret(newSecret('fwa')), this.now(), this.now());
  }

  /** The NATS user nkeys of agents with a live credential, for nats-server's users file. */
  natsAgentUsers(): Array<{ agentId: string; nkey: string }> {
    return this.db
      .prepare("SELECT agent_id AS agentId, nats_nkey AS nkey FROM agent_credentials WHERE nats_nkey != '' AND revoked_unix_ms = 0 AND rekey_token = '' ORDER BY agent_id")
      .all() as Array<{ agentId: string; nkey: string }>;
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
