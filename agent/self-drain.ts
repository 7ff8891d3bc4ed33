// Drain for an app that opted out of the gate (AppSpec drain_mode "self"): call its quiesce hook, poll its in-flight count.
//
//   Quiesce ──▶ hook: POST <quiesce_hook> on the app, or send it <quiesce_hook> as a signal
//           ──▶ poll GET <inflight_path> every 100 ms ──▶ 'inflight' events feed watchDrain ──▶ drained
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { BadInputError, FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import type { DrainSource } from './drain.js';

const POLL_INTERVAL_MS = 100;
const CALL_TIMEOUT_MS = 2000;

export function isSelfDrained(spec: AppSpec | undefined): boolean {
  return spec?.drainMode === 'self';
}

export interface SelfDrainTarget {
  app: string;
  /** Where the app listens (its service port: no gate in front of it). */
  port: number;
  /** The app's process, when one runs. */
  pid: number | undefined;
  spec: AppSpec;
  logger: Logger;
}

/** The app's own in-flight count as a DrainSource; polling stops once nobody listens (the drain watch ended). */
export class SelfDrain extends EventEmitter implements DrainSource {
  readonly held = 0;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly target: SelfDrainTarget) {
    super();
    this.on('removeListener', () => {
      if (this.listenerCount('inflight') === 0) this.close();
    });
  }

  /** Calls the quiesce hook, reads the count once (so the watch starts from a known value), then keeps polling. */
  static async quiesce(target: SelfDrainTarget): Promise<SelfDrain> {
    const drain = new SelfDrain(target);
    // No process: nothing is in flight and nobody to tell.
    if (!target.pid) return drain;
    await callHook(target);
    drain.count = await readInFlight(target);
    drain.schedule();
    return drain;
  }

  get inFlight(): number {
    return this.count;
  }

  /** Whether a next read of the count is scheduled (false once closed, or once the last listener left). */
  get polling(): boolean {
    return this.timer !== undefined;
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      readInFlight(this.target).then(
        (count) => {
          if (!this.timer) return;
          const changed = count !== this.count;
          this.count = count;
          this.schedule();
          if (changed) this.emit('inflight', count);
        },
        (err: Error) => {
          // The app may be busy or restarting its listener; the drainage interval bounds the wait anyway.
          this.target.logger.warn({ app: this.target.app, err: err.message }, 'could not read the in-flight count');
          if (this.timer) this.schedule();
        },
      );
    }, POLL_INTERVAL_MS);
  }
}

async function callHook(target: SelfDrainTarget): Promise<void> {
  const hook = target.spec.quiesceHook.trim();
  if (hook.startsWith('/')) {
    const status = await request(target.port, 'POST', hook).then((r) => r.status);
    if (status < 200 || status >= 300) throw new FleetwaveError(`app ${target.app}: quiesce hook POST ${hook} answered ${status}`);
    return;
  }
  if (/^SIG[A-Z0-9]+$/.test(hook)) {
    process.kill(target.pid!, hook as NodeJS.Signals);
    return;
  }
  throw new BadInputError(`app ${target.app}: quiesce hook '${hook}' is neither a path (/quiesce) nor a signal name (SIGUSR2)`);
}

async function readInFlight(target: SelfDrainTarget): Promise<number> {
  const path = target.spec.inflightPath;
  const { status, body } = await request(target.port, 'GET', path);
  if (status !== 200) throw new FleetwaveError(`GET ${path} answered ${status}`);
  const parsed: unknown = JSON.parse(body);
  const count = typeof parsed === 'number' ? parsed : (parsed as { inFlight?: unknown } | null)?.inFlight;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) throw new FleetwaveError(`GET ${path} gave no in-flight count: ${body.slice(0, 100)}`);
  return count;
}

function request(port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, timeout: CALL_TIMEOUT_MS, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CALL_TIMEOUT_MS} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new FleetwaveError(`${method} ${path} on port ${port} failed: ${err.code ?? err.message}`, { cause: err })));
    req.end();
  });
}
