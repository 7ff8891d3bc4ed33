// Clock skew between an agent and the controller: deadlines do not depend on it (commands carry the time left),
// but operators want to know a host's clock is off, since logs and event times from that host are off too.

/** Skew beyond this is logged by the controller and shown by `agent list`. */
export const CLOCK_SKEW_WARN_MS = 5_000;

/** "+312s" / "-4m" style, for a table cell; '' when within CLOCK_SKEW_WARN_MS. */
export function describeSkew(skewMs: number): string {
  if (Math.abs(skewMs) <= CLOCK_SKEW_WARN_MS) return '';
  const sign = skewMs > 0 ? '+' : '-';
  const seconds = Math.round(Math.abs(skewMs) / 1000);
  return seconds >= 120 ? `${sign}${Math.round(seconds / 60)}m` : `${sign}${seconds}s`;
}
