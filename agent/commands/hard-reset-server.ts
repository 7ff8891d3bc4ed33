// HardResetServer: stop every supervised app, run the host's reset hook, then start the active editions (this app on `edition`).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { FleetwaveError } from '../../common/errors.js';
import type { CommandContext, CommandHandler } from './types.js';

export const hardResetServer: CommandHandler<'hardResetServer'> = {
  kind: 'hardResetServer',
  async run(ctx, body) {
    const all = [...ctx.instances.values()];
    await Promise.all(all.map((instance) => instance.stop(false)));
    const hookError = ctx.options.resetHook ? await runResetHook(ctx).then(() => undefined, (err: Error) => err) : undefined;
    // Apps come back even when the hook failed: leaving the host dark would be worse than reporting the failure.
    const others = all.filter((i) => i !== ctx.instance && ctx.state.app(i.app).desired === 'running' && i.activeEdition);
    const results = await Promise.allSettled([
      ctx.instance.activate(body.edition || ctx.instance.activeEdition, body.app),
      ...others.map((i) => i.activate(i.activeEdition, undefined)),
    ]);
    if (hookError) throw hookError;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { activeEdition: ctx.instance.activeEdition };
  },
};

/** Runs --reset-hook through /bin/sh (it is local configuration, never sent over the wire); output goes to reset-hook.log. */
function runResetHook(ctx: CommandContext): Promise<void> {
  const logPath = join(ctx.state.dataDir, 'reset-hook.log');
  mkdirSync(ctx.state.dataDir, { recursive: true });
  const log = openSync(logPath, 'a');
  return new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', ctx.options.resetHook], {
      stdio: ['ignore', log, log],
      env: { ...process.env, FLEETWAVE_AGENT_ID: ctx.options.id, FLEETWAVE_APP: ctx.command.app, FLEETWAVE_EDITION: ctx.command.hardResetServer?.edition ?? '' },
      signal: ctx.signal,
    });
    child.once('error', (err) => reject(new FleetwaveError(`reset hook could not run: ${err.message}`, { cause: err })));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new FleetwaveError(`reset hook ${signal ? `was killed by ${signal}` : `exited with code ${code}`} (see ${logPath})`));
    });
  }).finally(() => closeSync(log));
}
