import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadInputError } from './errors.js';
import { formatDuration, parseDuration } from './durations.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['250', 250],
  ])('%s is %d ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each(['', 'soon', '-5s', '5 parsecs', 's', '1e3s', 'NaN'])('refuses %j with a BadInputError naming the flag', (text) => {
    expect(() => parseDuration(text, '--drain')).toThrow(BadInputError);
    expect(() => parseDuration(text, '--drain')).toThrow(/--drain/);
  });

  it('round-trips whole seconds and never returns a negative or fractional value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400 }), (seconds) => parseDuration(`${seconds}s`) === seconds * 1000),
      { seed: 42 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          const value = parseDuration(text);
          return Number.isInteger(value) && value >= 0;
        } catch (err) {
          return err instanceof BadInputError;
        }
      }),
      { seed: 42 },
    );
  });

  it('formats for people', () => {
    expect(formatDuration(12)).toBe('12ms');
    expect(formatDuration(1234)).toBe('1.23s');
  });
});
