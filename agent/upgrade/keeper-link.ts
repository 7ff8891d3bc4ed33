// The worker's side of the keeper (agent/upgrade/keeper.ts): tells it when the controller welcomed us, and hands over
// to it once an upgrade is staged.
import type { KeeperLink } from '../commands/types.js';
import { KEEPER_ENV } from './versions.js';
import type { KeeperMessage } from './keeper.js';

/** The link when this process runs under a keeper (its env mark and IPC channel), else undefined. */
export function keeperLink(onUpgradeStaged: () => void): KeeperLink | undefined {
  if (process.env[KEEPER_ENV] !== '1' || typeof process.send !== 'function') return undefined;
  // The channel must not keep a stopped agent alive.
  process.channel?.unref();
  return {
    connected: (version) => {
      const message: KeeperMessage = { type: 'connected', version };
      process.send?.(message);
    },
    upgradeStaged: onUpgradeStaged,
  };
}
