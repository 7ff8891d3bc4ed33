// Quiesce: mark the instance ineligible for new work and answer at once; drain progress follows as events.
import type { GateClient } from '../gate-client.js';
import { watchDrain } from '../drain.js';
import { isSelfDrained, SelfDrain } from '../self-drain.js';
import type { CommandHandler } from './types.js';

/** Used when the controller sends no drainage interval. */
const DEFAULT_DRAIN_MS = 30_000;
const watchers = new WeakMap<GateClient, () => void>();

export const quiesce: CommandHandler<'quiesce'> = {
  kind: 'quiesce',
  async run(ctx, body) {
    const { gate, spec } = ctx.instance;
    // A second Quiesce (re-delivery after an agent restart, or a new release step) restarts the drain watch.
    watchers.get(gate)?.();
    const drainMs = body.drainMs || DEFAULT_DRAIN_MS;
    if (isSelfDrained(spec)) {
      // The app opted out of the gate: it is told through its hook and reports its own in-flight count.
      const { instance } = ctx;
      const source = await SelfDrain.quiesce({ app: instance.app, port: instance.appPort, pid: instance.supervisor.pid, spec: spec!, logger: ctx.logger });
      const stop = watchDrain(source, ctx.command.app, drainMs, ctx.events, ctx.command.commandId);
      watchers.set(gate, () => {
        stop();
        source.close();
      });
    } else {
      // Durable first: an agent restarted before the next HealthCheck must come back quiesced, not open.
      await ctx.state.updateApp(ctx.command.app, { quiesced: true });
      await gate.quiesce();
      watchers.set(gate, watchDrain(gate, ctx.command.app, drainMs, ctx.events, ctx.command.commandId));
    }
    return { activeEdition: ctx.instance.activeEdition };
  },
};
