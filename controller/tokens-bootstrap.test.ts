// The bootstrap admin token is all or nothing: a file that cannot be written leaves no token behind, so the next
// start (path fixed) makes one instead of refusing because an admin token exists whose secret no one has.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { bootstrapAdminToken } from './tokens-bootstrap.js';
import { TokenStore } from './tokens.js';

const log = createLogger({ name: 'test', level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): { dir: string; tokens: TokenStore; db: Database.Database } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-bootstrap-'));
  dirs.push(dir);
  const db = new Database(join(dir, 'fleetwave.db'));
  return { dir, tokens: new TokenStore(db), db };
}

describe('bootstrapAdminToken', () => {
  it('leaves no token when the file cannot be written, and makes one on the next start', () => {
    const { dir, tokens, db } = scratch();
    // A path under a regular file cannot be created, even by root (as a read-only /etc cannot under ProtectSystem=strict).
    writeFileSync(join(dir, 'not-a-dir'), '');
    const bad = join(dir, 'not-a-dir', 'admin.token');
    expect(() => bootstrapAdminToken(tokens, bad, log, 1)).toThrow(/cannot write the bootstrap admin token to .*not-a-dir\/admin\.token.*no token was made/);
    expect(tokens.listTokens()).toEqual([]);
    expect(tokens.hasActiveAdmin()).toBe(false);
    db.close();

    // The next start, same database, the path fixed.
    const again = new TokenStore(new Database(join(dir, 'fleetwave.db')));
    const good = join(dir, 'state', 'admin.token');
    expect(bootstrapAdminToken(again, good, log, 2)).toBe(true);
    const secret = readFileSync(good, 'utf8').trim();
    expect(again.verifyToken(secret)?.role).toBe('admin');
    expect(statSync(good).mode & 0o777).toBe(0o600);
    // Repeatable: a later start keeps the token and the file as they are.
    expect(bootstrapAdminToken(again, good, log, 3)).toBe(false);
    expect(readFileSync(good, 'utf8').trim()).toBe(secret);
    expect(again.listTokens().map((t) => t.name)).toEqual(['bootstrap-admin-2']);
  });
});
