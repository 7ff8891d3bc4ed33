// HardResetServer: stop every supervised app, run the host's reset hook, then start the active editions (this app on `edition`).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { FleetwaveError } from '../../common/errors.js';
import { describeExit } from '../supervisor.js';
import type { CommandContext, CommandHandler } from './types.js';

export const hardResetServer: CommandHandler<'hardResetServer'> = {
  kind: 'hardResetServer',
  async run(ctx, body) {
    const all = [...ctx.instances.values()];
    await Promise.all(all.map((instance) => instance.stop(false)));
    const hookError = (await hookAlreadyRan(ctx)) ? undefined : await runHookJournaled(ctx);
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

/**
 * The hook may reboot the host (or restart the agent): it is journaled before it starts, and a reset delivered
 * again after that (the agent came back) resumes after the hook instead of running it, and so rebooting, again.
 */
async function hookAlreadyRan(ctx: CommandContext): Promise<boolean> {
  const ran = ctx.state.command(ctx.command.commandId)?.resetHook;
  if (!ran) return false;
  const rebooted = ran.bootId !== ctx.options.bootId;
  ctx.logger.info({ hookBootId: ran.bootId, bootId: ctx.options.bootId, hookStartedAt: ran.startedAt }, rebooted
    ? 'host rebooted during the reset hook; resuming the hard reset after it'
    : 'agent restarted during the reset hook; resuming the hard reset without running the hook again');
  return true;
}

async function runHookJournaled(ctx: CommandContext): Promise<Error | undefined> {
  if (!ctx.options.resetHook) return undefined;
  // Events of the stopped apps leave before the hook may take the host down.
  await ctx.events.flush?.();
  try {
    await ctx.state.markResetHook(ctx.command.commandId, ctx.options.bootId, Date.now());
  } catch (err) {
    // Unjournaled, a hook that reboots would run again after every reboot.
    return new FleetwaveError(`reset hook not run: could not journal it first (${(err as Error).message})`, { cause: err });
  }
  return runResetHook(ctx).then(() => undefined, (err: Error) => err);
}

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
      else reject(new FleetwaveError(`reset hook ${describeExit({ code, signal })} (see ${logPath})`));
    });
  }).finally(() => closeSync(log));
}
