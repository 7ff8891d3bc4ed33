// Downloads a package URL to a file while hashing it, and verifies its sha256 and size: the agent before it unpacks,
// the controller once at `edition install`.
//
// node:http(s) rather than fetch(): the controller's https artifact URLs are checked against the fleetwave CA (--ca)
// and carry the agent's credential, while other package hosts get neither (system roots, no credential), also
// across redirects.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PackageError, UnavailableError } from './errors.js';

/** What a request to one URL carries: only the controller's own URLs get the credential and the fleetwave CA. */
export interface UrlAccess {
  /** `Authorization` header value; '' none. */
  authorization: string;
  /** PEM of the CA to trust instead of the system's roots; null: the system's roots. */
  ca: Buffer | null;
}

export type DownloadAccess = (url: string) => UrlAccess;

const NO_ACCESS: DownloadAccess = () => ({ authorization: '', ca: null });
const MAX_REDIRECTS = 5;

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
export async function downloadVerified(expected: ExpectedPackage, dest: string, signal: AbortSignal, access: DownloadAccess = NO_ACCESS): Promise<void> {
  if (!/^https?:\/\//i.test(expected.url)) throw new PackageError(`package url '${expected.url}' is not http(s)`);
  if (!/^[0-9a-f]{64}$/i.test(expected.sha256)) throw new PackageError(`package sha256 '${expected.sha256}' is not 64 hex digits`);
  const limit = expected.maxBytes ?? Infinity;
  const owner = expected.limitOwner ?? "agent's";
  if (expected.size > limit) throw new PackageError(`package of ${expected.size} bytes is over the ${owner} limit of ${limit} bytes (--max-package-size)`);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    let response: IncomingMessage;
    try {
      response = await request(expected.url, signal, access, MAX_REDIRECTS);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new UnavailableError(`package download from ${expected.url} failed: ${describe(err)}`, { cause: err });
    }
    const statusCode = response.statusCode ?? 0;
    if (statusCode < 200 || statusCode > 299) {
      response.resume();
      const why = statusCode === 401 || statusCode === 403 ? refusalHint(expected.url, access) : '';
      throw new UnavailableError(`package download from ${expected.url} failed: HTTP ${statusCode}${why}`);
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
    try {
      await pipeline(response, meter, createWriteStream(dest, { mode: 0o600 }), { signal });
    } catch (err) {
      // A connection cut mid-body (the controller restarting) is worth a retry; a full disk is not.
      if (!signal.aborted && brokeOff(err)) throw new UnavailableError(`package download from ${expected.url} broke off: ${describe(err)}`, { cause: err });
      throw err;
    }
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

/** GET with redirects followed; each hop gets the access of its own URL, so a redirect never carries the credential away. */
function request(url: string, signal: AbortSignal, access: DownloadAccess, redirectsLeft: number): Promise<IncomingMessage> {
  const target = new URL(url);
  const { authorization, ca } = access(target.href);
  const headers = authorization ? { authorization } : undefined;
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const location = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location) {
        res.resume();
        if (redirectsLeft <= 0) return reject(new Error(`more than ${MAX_REDIRECTS} redirects`));
        const next = new URL(location, target);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') return reject(new Error(`redirect to '${next.href}' is not http(s)`));
        return resolve(request(next.href, signal, access, redirectsLeft - 1));
      }
      resolve(res);
    };
    const req = target.protocol === 'https:' ? httpsGet(target, { signal, headers, ...(ca ? { ca } : {}) }, onResponse) : httpGet(target, { signal, headers }, onResponse);
    req.on('error', reject);
  });
}

const BROKEN_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

function brokeOff(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (e.code !== undefined && BROKEN_CONNECTION.has(e.code)) || e.message === 'aborted';
}

function refusalHint(url: string, access: DownloadAccess): string {
  return access(url).authorization
    ? " (the controller refused this agent's credential)"
    : " (no credential sent: the URL is not under the artifact base URL the controller announced; was the edition installed under another --advertise-http?)";
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.code ?? e.message ?? String(err);
}
