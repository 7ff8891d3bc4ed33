// Reads a file named by a flag (certificate, key, credentials), failing with one line that names the flag.
import { readFileSync } from 'node:fs';
import { BadInputError } from './errors.js';

export function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BadInputError(`${flag}: cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}
