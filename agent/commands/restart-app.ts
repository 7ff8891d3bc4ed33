// RestartApp (soft reset): recycle this app's process onto `edition`; the agent and other apps stay up.
//
//   start-first (asked, and the host can afford two processes): see start-first.ts; nothing is held
//   stop-first (asked, or the fallback): stop the old process (SIGTERM, SIGKILL after the stop timeout), start the new.
//     Asked for stop-first, the controller quiesced and drained the gate before; a fallback quiesces it here, waits for
//     in-flight requests (up to the stop timeout), and lets the held requests go to the new process once it started.
import { isSelfDrained } from '../self-drain.js';
import { chooseOrder, DEFAULT_STOP_TIMEOUT_MS, RestartFailedError, startFirst } from '../start-first.js';
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
    const spec = await instance.startable(edition, body.app);
    const { order, reason } = chooseOrder(body.updateOrder, spec, ctx.options.startFirstMinFreeMemory);
    ctx.progress.updateOrder = order;
    if (order === 'start-first') {
      await startFirst({ instance, edition, spec, signal: ctx.signal, deadline: ctx.deadline ?? 0, logger: ctx.logger }).catch((err: Error) => {
        throw err instanceof RestartFailedError ? err : new RestartFailedError(err.message, order, err);
      });
      return { activeEdition: edition, updateOrder: order };
    }
    const fallback = reason !== '';
    if (fallback) ctx.logger.warn({ app: instance.app, reason }, 'start-first refused; restarting stop-first');
    // An app that drains itself has no gate in front of it to quiesce.
    const quiesceHere = fallback && !isSelfDrained(spec) && !instance.gate.quiesced;
    if (quiesceHere) {
      await instance.gate.quiesce();
      await instance.gate.idle(instance.internalPort, spec.stopTimeoutMs || DEFAULT_STOP_TIMEOUT_MS);
    }
    try {
      // activate() stops the old process (SIGTERM, SIGKILL after the stop timeout) before starting the new one.
      return { activeEdition: await instance.activate(edition, spec, { updateOrder: order }), updateOrder: order };
    } catch (err) {
      throw new RestartFailedError((err as Error).message, order, err);
    } finally {
      if (quiesceHere) await instance.gate.release();
    }
  },
};
