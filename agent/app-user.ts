// The unprivileged user apps run as when the agent runs as root (--app-user): resolved once, at start-up.
import { spawnSync } from 'node:child_process';
import { BadInputError } from '../common/errors.js';

export interface RunAs {
  user: string;
  uid: number;
  gid: number;
}

/**
 * The uid/gid of `user` (a name or a uid; looked up with `id`, so NSS sources count), or null when apps keep the
 * agent's own user: no --app-user, or the agent is not root (only root can switch users; a warning says so).
 */
export function resolveAppUser(user: string, isRoot = process.getuid?.() === 0): RunAs | null {
  if (!user || !isRoot) return null;
  const uid = idOf(user, '-u');
  const gid = idOf(user, '-g');
  if (uid === 0) throw new BadInputError(`--app-user: '${user}' is root; give an unprivileged user`);
  return { user, uid, gid };
}

function idOf(user: string, flag: '-u' | '-g'): number {
  const result = spawnSync('id', [flag, user], { encoding: 'utf8' });
  const value = Number(result.stdout?.trim());
  if (result.status !== 0 || !Number.isInteger(value)) throw new BadInputError(`--app-user: no user '${user}' on this host`);
  return value;
}
