// The first admin token: written to --bootstrap-token-file when the database has no live admin token yet.
//
// All or nothing: the token's row and its file are made together. The file is written (temp file, fsync, rename)
// inside the transaction that inserts the row, so a file that cannot be written (a read-only /etc under systemd's
// ProtectSystem=strict, a missing directory) rolls the row back: the start fails with one line, and the next start,
// with the path fixed, makes the token again instead of refusing because "an admin token exists" whose secret no one has.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { TokenStore } from './tokens.js';

/** Creates token `bootstrap-admin-<time>` and writes its secret (mode 0600); does nothing if an admin token exists. */
export function bootstrapAdminToken(tokens: TokenStore, file: string, log: Logger, now = Date.now()): boolean {
  if (tokens.hasActiveAdmin()) {
    log.info({ file }, 'an admin token exists; bootstrap token file not written');
    return false;
  }
  const record = tokens.inTransaction(() => {
    const created = tokens.createToken({ name: `bootstrap-admin-${now}`, role: 'admin', createdBy: 'bootstrap' });
    writeSecretFile(file, created.secret);
    return created.record;
  });
  log.warn({ file, token: record.name }, 'bootstrap admin token written; make your own tokens with it and revoke it');
  return true;
}

/** Writes `secret` to `file` (0600) so that the file is either absent or complete, also across a crash. */
function writeSecretFile(file: string, secret: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, secret + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (err) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // The temp file was never made (its directory is not one).
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new FleetwaveError(
      `cannot write the bootstrap admin token to ${file} (${reason}); no token was made: give --bootstrap-token-file a path the controller can write (e.g. in its data dir) and start again`,
    );
  }
}
