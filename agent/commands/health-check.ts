// HealthCheck: probe the app's internal port until healthy or out of tries; healthy releases the gate's held requests.
import http from 'node:http';
import { FleetwaveError } from '../../common/errors.js';
import type { CommandHandler } from './types.js';

const DEFAULT_INTERVAL_MS = 500;
const DEFAULT_TIMEOUT_MS = 2000;

export const healthCheck: CommandHandler<'healthCheck'> = {
  kind: 'healthCheck',
  async run(ctx, body) {
    const { instance } = ctx;
    const edition = instance.supervisor.edition;
    const path = body.path || instance.spec?.healthPath || '/healthz';
    const expected = body.expectedStatus || 200;
    // retries 0 means: keep trying until the command's deadline.
    const maxTries = body.retries > 0 ? body.retries + 1 : Infinity;
    const started = Date.now();
    let lastError = 'not probed';
    let tries = 0;
    while (tries < maxTries && !ctx.signal.aborted) {
      if (instance.supervisor.state === 'stopped') {
        lastError = 'app is not running';
        break;
      }
      tries++;
      lastError = await probe(instance.appPort, path, expected, body.timeoutMs || DEFAULT_TIMEOUT_MS, ctx.signal);
      if (!lastError) {
        // Cleared before the gate opens: a failed write leaves it quiesced, as the failed step tells the controller.
        if (ctx.state.app(ctx.command.app).quiesced) await ctx.state.updateApp(ctx.command.app, { quiesced: false });
        instance.gate.release();
        ctx.events.publish(ctx.command.app, 'healthy', { edition, tries, elapsedMs: Date.now() - started });
        return { activeEdition: instance.activeEdition };
      }
      if (tries < maxTries) await pause(body.intervalMs || DEFAULT_INTERVAL_MS, ctx.signal);
    }
    ctx.events.publish(ctx.command.app, 'unhealthy', { edition, tries, elapsedMs: Date.now() - started, error: lastError });
    throw new FleetwaveError(`app ${ctx.command.app} edition ${edition} unhealthy after ${tries} tries: ${lastError}`);
  },
};

/** One GET; resolves '' when the status matches, otherwise a one-line reason. */
function probe(port: number, path: string, expected: number, timeoutMs: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs, signal, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === expected ? '' : `GET ${path} answered ${res.statusCode}, expected ${expected}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`GET ${path} failed: ${err.code ?? err.message}`));
  });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
