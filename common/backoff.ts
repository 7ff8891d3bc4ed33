// Reconnect delays (agent session, router watch): exponential from 200 ms doubling to 10 s, with full jitter.

export const BACKOFF_BASE_MS = 200;
export const BACKOFF_CAP_MS = 10_000;

/** Delay before reconnect attempt `attempt` (0 for the first retry after a drop). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.floor(random() * ceiling);
}
