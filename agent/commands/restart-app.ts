// RestartApp (soft reset): recycle this app's process onto `edition`; the agent and other apps stay up.
import type { CommandHandler } from './types.js';

export const restartApp: CommandHandler<'restartApp'> = {
  kind: 'restartApp',
  async run(ctx, body) {
    const { instance } = ctx;
    const edition = body.edition || instance.activeEdition;
    // Delivered again after this agent died mid-restart: the restarted agent already runs (adopted or restored) the
    // edition this command moves to; starting it once more would only cost another hold.
    const rerun = (ctx.state.command(ctx.command.commandId)?.runs ?? 1) > 1;
    if (rerun && instance.supervisor.edition === edition && instance.supervisor.state === 'running') return { activeEdition: instance.activeEdition };
    // activate() stops the old process (SIGTERM, SIGKILL after the stop timeout) before starting the new one.
    return { activeEdition: await instance.activate(edition, body.app) };
  },
};
