// Reconnect backoff: full jitter under a ceiling that doubles from 200 ms to 10 s.
import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  it.each([
    [0, 200],
    [1, 400],
    [5, 6400],
    [6, 10_000],
    [100, 10_000],
  ])('attempt %i waits at most %i ms', (attempt, ceiling) => {
    expect(backoffDelay(attempt, () => 0.999_999)).toBe(ceiling - 1);
    expect(backoffDelay(attempt, () => 0)).toBe(0);
  });
});
