// The worker's side of the keeper (agent/upgrade/keeper.ts): tells it when the controller welcomed us, and hands over
// to it once an upgrade is staged.
import type { KeeperLink } from '../commands/types.js';
import { KEEPER_ENV } from './versions.js';
import type { KeeperMessage } from './keeper.js';

/**
 * The link when this process runs under a keeper (its env mark and IPC channel), else undefined. `onKeeperGone`: the
 * keeper died (SIGKILL, crash); the worker stops too, or the keeper systemd starts next would run a second agent.
 */
export function keeperLink(onUpgradeStaged: () => void, onKeeperGone: () => void): KeeperLink | undefined {
  if (process.env[KEEPER_ENV] !== '1' || typeof process.send !== 'function') return undefined;
  // The channel must not keep a stopped agent alive.
  process.channel?.unref();
  process.once('disconnect', onKeeperGone);
  return {
    connected: (version) => {
      const message: KeeperMessage = { type: 'connected', version };
      process.send?.(message);
    },
    upgradeStaged: onUpgradeStaged,
  };
}
