// The first admin token: written to --bootstrap-token-file when the database has no live admin token yet.
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { TokenStore } from './tokens.js';

/** Creates token `bootstrap-admin-<time>` and writes its secret (mode 0600); does nothing if an admin token exists. */
export function bootstrapAdminToken(tokens: TokenStore, file: string, log: Logger, now = Date.now()): boolean {
  if (tokens.hasActiveAdmin()) {
    log.info({ file }, 'an admin token exists; bootstrap token file not written');
    return false;
  }
  const { secret, record } = tokens.createToken({ name: `bootstrap-admin-${now}`, role: 'admin', createdBy: 'bootstrap' });
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, secret + '\n', { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
  log.warn({ file, token: record.name }, 'bootstrap admin token written; make your own tokens with it and revoke it');
  return true;
}
