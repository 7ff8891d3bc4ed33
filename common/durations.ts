// Parses operator durations ("30s", "500ms", "2m", "1h") into milliseconds.
import ms from 'ms';
import { BadInputError } from './errors.js';

/** Returns milliseconds, or throws BadInputError naming the flag. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  // A bare number is taken as milliseconds, as `ms` does.
  const value = /^\d+(\.\d+)?\s*[a-zA-Z]*$/.test(trimmed) ? ms(trimmed as ms.StringValue) : undefined;
  if (value === undefined || !Number.isFinite(value) || value < 0) {
    // Escaped, so a stray newline in the input cannot break the one-line error.
    throw new BadInputError(`${what}: '${JSON.stringify(text).slice(1, -1)}' is not a duration (examples: 500ms, 30s, 2m)`);
  }
  return Math.round(value);
}

export function formatDuration(millis: number): string {
  if (millis < 1000) return `${Math.round(millis)}ms`;
  if (millis < 60_000) return `${(millis / 1000).toFixed(millis < 10_000 ? 2 : 1)}s`;
  return ms(Math.round(millis), { long: false });
}
