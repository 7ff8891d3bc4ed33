// HealthCheck: probe the app's internal port until healthy or out of tries; healthy releases the gate's held requests.
import { FleetwaveError } from '../../common/errors.js';
import { probeUntilHealthy, publishHealth, type HealthProbeSettings } from '../health-probe.js';
import type { CommandHandler } from './types.js';

export const healthCheck: CommandHandler<'healthCheck'> = {
  kind: 'healthCheck',
  async run(ctx, body) {
    const { instance } = ctx;
    const edition = instance.supervisor.edition;
    const settings: HealthProbeSettings = {
      ...body,
      path: body.path || instance.spec?.healthPath || '/healthz',
      initialIntervalMs: instance.spec?.healthInitialIntervalMs || 0,
    };
    // The automatic restart after a crash probes the way the last release did.
    instance.healthSettings = settings;
    const outcome = await probeUntilHealthy(instance, settings, ctx.signal);
    if (outcome.healthy) {
      // Cleared before the gate opens: a failed write leaves it quiesced, as the failed step tells the controller.
      if (ctx.state.app(ctx.command.app).quiesced) await ctx.state.updateApp(ctx.command.app, { quiesced: false });
      await instance.gate.release();
    }
    publishHealth(outcome, { events: ctx.events, app: ctx.command.app, edition, trigger: 'command' });
    if (!outcome.healthy) throw new FleetwaveError(`app ${ctx.command.app} edition ${edition} unhealthy after ${outcome.tries} tries: ${outcome.error}`);
    return { activeEdition: instance.activeEdition };
  },
};
