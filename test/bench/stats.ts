// Figures the benchmarks print.

/** Nearest-rank percentile (p in 0..100) of `values`; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function median(values: readonly number[]): number | null {
  return percentile(values, 50);
}

/** Rounded to 0.1 (figures on a line, not measurements to the microsecond). */
export function round1(n: number | null): number | null {
  return n === null ? null : Math.round(n * 10) / 10;
}
