// StartApp: start the given (or else the active) edition; answers once the process outlived its start grace.
import type { CommandHandler } from './types.js';

export const startApp: CommandHandler<'startApp'> = {
  kind: 'startApp',
  async run(ctx, body) {
    const { instance } = ctx;
    const edition = body.edition || instance.activeEdition;
    // Idempotent: a re-delivered start finds the edition already running and leaves it alone.
    if (instance.supervisor.edition === edition && instance.supervisor.state === 'running') return { activeEdition: edition };
    return { activeEdition: await instance.activate(edition, body.app) };
  },
};
