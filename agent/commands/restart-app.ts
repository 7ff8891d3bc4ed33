// RestartApp (soft reset): recycle this app's process onto `edition`; the agent and other apps stay up.
import type { CommandHandler } from './types.js';

export const restartApp: CommandHandler<'restartApp'> = {
  kind: 'restartApp',
  async run(ctx, body) {
    const { instance } = ctx;
    const edition = body.edition || instance.activeEdition;
    // activate() stops the old process (SIGTERM, SIGKILL after the stop timeout) before starting the new one.
    return { activeEdition: await instance.activate(edition, body.app) };
  },
};
