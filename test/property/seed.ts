// Property tests run with a fixed seed, so CI sees the same cases every run; FC_SEED=<n> explores other ones.
import fc from 'fast-check';

export const SEED = Number(process.env.FC_SEED ?? 20261122);

/** fast-check parameters for one property: the fixed seed and `numRuns` cases. */
export function runs(numRuns: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns };
}
