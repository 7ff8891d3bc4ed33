// Downloads a package URL to a file while hashing it, and verifies its sha256 and size: the agent before it unpacks,
// the controller once at `edition install`.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { PackageError, UnavailableError } from './errors.js';

export interface ExpectedPackage {
  url: string;
  /** Lower-case hex sha256. */
  sha256: string;
  /** Bytes; 0 when the controller does not know (the sha256 still binds the content). */
  size: number;
  /** --max-package-size: bigger packages are refused before or while downloading. */
  maxBytes?: number;
  /** Whose limit maxBytes is, for the message ("agent's" unless told). */
  limitOwner?: string;
}

/** Streams `expected.url` into `dest`; on any failure `dest` is removed and a one-line error thrown. */
export async function downloadVerified(expected: ExpectedPackage, dest: string, signal: AbortSignal): Promise<void> {
  if (!/^https?:\/\//i.test(expected.url)) throw new PackageError(`package url '${expected.url}' is not http(s)`);
  if (!/^[0-9a-f]{64}$/i.test(expected.sha256)) throw new PackageError(`package sha256 '${expected.sha256}' is not 64 hex digits`);
  const limit = expected.maxBytes ?? Infinity;
  const owner = expected.limitOwner ?? "agent's";
  if (expected.size > limit) throw new PackageError(`package of ${expected.size} bytes is over the ${owner} limit of ${limit} bytes (--max-package-size)`);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    let response: Response;
    try {
      response = await fetch(expected.url, { signal, redirect: 'follow' });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new UnavailableError(`package download from ${expected.url} failed: ${describe(err)}`, { cause: err });
    }
    if (!response.ok || !response.body) {
      throw new UnavailableError(`package download from ${expected.url} failed: HTTP ${response.status}`);
    }
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > limit) return done(new PackageError(`package is over the ${owner} limit of ${limit} bytes (--max-package-size)`));
        if (expected.size > 0 && bytes > expected.size) {
          return done(new PackageError(`package size mismatch: more than the expected ${expected.size} bytes`));
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), meter, createWriteStream(dest, { mode: 0o600 }), { signal });
    if (expected.size > 0 && bytes !== expected.size) {
      throw new PackageError(`package size mismatch: got ${bytes} bytes, expected ${expected.size}`);
    }
    const actual = hash.digest('hex');
    if (actual !== expected.sha256.toLowerCase()) {
      throw new PackageError(`package sha256 mismatch: got ${actual}, expected ${expected.sha256.toLowerCase()}`);
    }
  } catch (err) {
    await rm(dest, { force: true });
    throw err;
  }
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
