// How `agent list` words an agent's clock skew: nothing within 5 s, seconds up to 2 minutes, minutes beyond.
import { describe, expect, it } from 'vitest';
import { describeSkew } from './clock.js';

describe('describeSkew', () => {
  it.each([
    [0, ''],
    [5_000, ''],
    [-4_999, ''],
    [12_400, '+12s'],
    [-90_000, '-90s'],
    [600_000, '+10m'],
    [-3_600_000, '-60m'],
  ])('%d ms reads %j', (skew, text) => {
    expect(describeSkew(skew)).toBe(text);
  });
});
