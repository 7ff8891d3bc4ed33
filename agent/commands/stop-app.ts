// StopApp: stop the app process (SIGTERM, then SIGKILL after the stop timeout) and keep it stopped across agent restarts.
import type { CommandHandler } from './types.js';

export const stopApp: CommandHandler<'stopApp'> = {
  kind: 'stopApp',
  async run(ctx) {
    await ctx.instance.stop(true);
    return { activeEdition: ctx.instance.activeEdition };
  },
};
