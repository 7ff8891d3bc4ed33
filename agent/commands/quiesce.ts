// Quiesce: mark the instance ineligible for new work and answer at once; drain progress follows as events.
import type { TrafficGate } from '../gate.js';
import { watchDrain } from '../drain.js';
import type { CommandHandler } from './types.js';

/** Used when the controller sends no drainage interval. */
const DEFAULT_DRAIN_MS = 30_000;
const watchers = new WeakMap<TrafficGate, () => void>();

export const quiesce: CommandHandler<'quiesce'> = {
  kind: 'quiesce',
  async run(ctx, body) {
    const { gate } = ctx.instance;
    gate.quiesce();
    // A second Quiesce (re-delivery after an agent restart, or a new release step) restarts the drain watch.
    watchers.get(gate)?.();
    watchers.set(gate, watchDrain(gate, ctx.command.app, body.drainMs || DEFAULT_DRAIN_MS, ctx.events));
    return { activeEdition: ctx.instance.activeEdition };
  },
};
