// Maps an unexpected app exit to whether and when the supervisor starts it again.

export interface RestartDecision {
  restart: boolean;
  delayMs: number;
  reason: string;
}

/** A process that stayed up this long counts as healthy again: the backoff starts over. */
export const STABLE_UPTIME_MS = 10_000;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 30_000;

/**
 * @param crashesInARow unexpected exits since the process last stayed up STABLE_UPTIME_MS, including this one
 */
export function decideRestart(exit: { code: number | null; signal: string | null }, crashesInARow: number): RestartDecision {
  const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const delayMs = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, crashesInARow - 1));
  // The gate holds requests meanwhile, so restarting a crashed app is always worth it; only the delay grows.
  return { restart: true, delayMs, reason: `app ${how}; restarting in ${delayMs} ms (crash ${crashesInARow} in a row)` };
}
