// Probes an app's health path until it answers the expected status or the tries run out, and publishes the outcome.
// Used by the HealthCheck command, by a start waiting for its app (supervisor start grace) and by the automatic
// restart after a crash (no command involved).
//
//   probe at once ──fail──▶ wait 50 ms ──▶ probe ──fail──▶ wait 100, 200, 400 … up to intervalMs ──▶ … healthy | given up
//                  (a refused connection, nothing listening yet, keeps the wait at the initial interval)
import http from 'node:http';
import type { EventSink } from './events.js';

/** How to probe; the fields of the HealthCheck command. */
export interface HealthProbeSettings {
  path: string;
  expectedStatus: number;
  /** Probes after the first; 0 keeps trying until `signal` aborts. */
  retries: number;
  intervalMs: number;
  timeoutMs: number;
  /** First wait between probes, doubling up to `intervalMs`; 0: DEFAULT_INITIAL_INTERVAL_MS. */
  initialIntervalMs?: number;
}

/** What the probe needs of an instance (its app's port and whether a process runs at all). */
export interface ProbeTarget {
  readonly appPort: number;
  readonly supervisor: { readonly state: string };
}

export interface HealthOutcome {
  healthy: boolean;
  tries: number;
  elapsedMs: number;
  /** Last failure, one line ('' when healthy). */
  error: string;
}

/** Why a health check ran, carried in `healthy` / `unhealthy` events. */
export type HealthTrigger = 'command' | 'crash-restart';

const DEFAULT_INTERVAL_MS = 500;
/** The first probes come fast: an app that listens after 500 ms is seen within about 50 ms of it. */
export const DEFAULT_INITIAL_INTERVAL_MS = 50;
const DEFAULT_TIMEOUT_MS = 2000;
/** After a crash restart nobody waits with a deadline: the probe gives up after this many retries unless told otherwise. */
export const CRASH_RESTART_RETRIES = 20;

/** Publishes the outcome of a probe as `healthy` or `unhealthy` (with the last failure) for `app`. */
export function publishHealth(outcome: HealthOutcome, report: { events: EventSink; app: string; edition: string; trigger: HealthTrigger }): void {
  const data = { edition: report.edition, tries: outcome.tries, elapsedMs: outcome.elapsedMs, trigger: report.trigger };
  if (outcome.healthy) report.events.publish(report.app, 'healthy', data);
  else report.events.publish(report.app, 'unhealthy', { ...data, error: outcome.error });
}

/**
 * Probes until healthy, `signal` aborts, or both the tries (`retries` + 1) and the time they used to take at the fixed
 * interval (`retries` × `intervalMs`) are spent: faster first probes never make a check give up sooner.
 */
export async function probeUntilHealthy(target: ProbeTarget, settings: HealthProbeSettings, signal: AbortSignal): Promise<HealthOutcome> {
  const intervalMs = settings.intervalMs || DEFAULT_INTERVAL_MS;
  const initialMs = Math.min(settings.initialIntervalMs || DEFAULT_INITIAL_INTERVAL_MS, intervalMs);
  const maxTries = settings.retries > 0 ? settings.retries + 1 : Infinity;
  const budgetMs = settings.retries > 0 ? settings.retries * intervalMs : Infinity;
  const started = Date.now();
  let error = 'not probed';
  let tries = 0;
  let backoffStep = 0;
  while (!signal.aborted) {
    if (target.supervisor.state === 'stopped') {
      error = 'app is not running';
      break;
    }
    tries++;
    const failure = await probe(target.appPort, settings.path, settings.expectedStatus || 200, settings.timeoutMs || DEFAULT_TIMEOUT_MS, signal);
    // A probe cut short by the signal says nothing about the app: the failure before it does.
    if (signal.aborted && tries > 1) break;
    error = failure;
    if (!error) return { healthy: true, tries, elapsedMs: Date.now() - started, error: '' };
    const left = budgetMs - (Date.now() - started);
    if (tries >= maxTries && left <= 0) break;
    const wait = probeDelay(backoffStep, initialMs, intervalMs);
    // Nothing listening yet costs the app nothing to ask again; an answer (or a timeout) backs off.
    if (!error.endsWith('ECONNREFUSED')) backoffStep++;
    await pause(tries >= maxTries ? Math.min(wait, left) : wait, signal);
  }
  return { healthy: false, tries, elapsedMs: Date.now() - started, error };
}

/** The wait after a failed probe: `initialMs` doubled `step` times, at most `maxMs`. */
export function probeDelay(step: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(step, 30));
}

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
