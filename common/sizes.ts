// Parses byte sizes given as flags: "2GiB", "512MiB", "64kB", "1000" (bytes).
import { BadInputError } from './errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Bytes from a number or "N[unit]" (B, kB, MB, GB, KiB, MiB, GiB); at least `min`. */
export function parseByteSize(value: string | number, flag: string, min = 1): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < min) {
    throw new BadInputError(`${flag}: '${JSON.stringify(String(value)).slice(1, -1)}' is not a size of at least ${min} bytes (examples: 512MiB, 2GiB, 1000000)`);
  }
  return bytes;
}
