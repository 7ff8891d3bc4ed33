// `edition install` checks the package at the door, so a bad one is refused in one line instead of failing at release
// time: an uploaded tar.gz is inspected as the agents will unpack it; a URL is fetched once to verify size and sha256
// (and inspected too). Nothing is kept from a refused package: no artifact file, no edition row.
import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { timeoutSignal } from '../common/abort.js';
import { inspectArchive, type ArchiveLimits } from '../common/archive.js';
import { BadInputError, FleetwaveError } from '../common/errors.js';
import { downloadVerified } from '../common/package-fetch.js';
import { artifactPath, artifactsDir, sha256Of } from './artifacts.js';

export interface PackageChecks {
  /** What a tar.gz may unpack to: the controller's --max-unpacked-size and --max-package-entries. */
  limits: ArchiveLimits;
  /** The controller's --max-package-size, for packages fetched from a URL. */
  maxPackageBytes: number;
  /** Bounds the one fetch of a URL package. */
  fetchTimeoutMs: number;
}

/** Checks uploaded content and stores it as an artifact; returns its sha256 and size. Throws BadInputError, storing nothing. */
export async function storeCheckedUpload(dataDir: string, content: Uint8Array, format: string, checks: PackageChecks): Promise<{ sha256: string; size: number }> {
  const sha256 = sha256Of(content);
  mkdirSync(artifactsDir(dataDir), { recursive: true });
  // Checked under a temporary name: a refused package never becomes an artifact the HTTP side would serve.
  const temp = join(artifactsDir(dataDir), `.check-${randomUUID()}.tmp`);
  try {
    writeFileSync(temp, content, { flush: true, mode: 0o600 });
    if (format === 'tar.gz') await refuseBadArchive(temp, checks.limits);
    renameSync(temp, artifactPath(dataDir, sha256));
  } finally {
    rmSync(temp, { force: true });
  }
  return { sha256, size: content.length };
}

/** Fetches `url` once into a temporary file to verify its sha256 (and size when given); returns the size it has. */
export async function checkUrlPackage(
  dataDir: string,
  url: string,
  sha256: string,
  size: number,
  format: string,
  checks: PackageChecks,
  callerGone: AbortSignal,
): Promise<number> {
  mkdirSync(artifactsDir(dataDir), { recursive: true });
  const temp = join(artifactsDir(dataDir), `.fetch-${randomUUID()}.tmp`);
  try {
    try {
      const signal = timeoutSignal(callerGone, checks.fetchTimeoutMs);
      await downloadVerified({ url, sha256, size, maxBytes: checks.maxPackageBytes, limitOwner: "controller's" }, temp, signal);
    } catch (err) {
      throw new BadInputError(`edition: ${url} was refused: ${oneLine(err)}`, { cause: err });
    }
    if (format === 'tar.gz') await refuseBadArchive(temp, checks.limits);
    return (await stat(temp)).size;
  } finally {
    rmSync(temp, { force: true });
  }
}

async function refuseBadArchive(file: string, limits: ArchiveLimits): Promise<void> {
  try {
    await inspectArchive(file, limits);
  } catch (err) {
    if (err instanceof FleetwaveError) throw new BadInputError(`edition: ${err.message}`, { cause: err });
    throw err;
  }
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? (err.name === 'TimeoutError' ? 'no complete answer in time' : err.message) : String(err);
  return message.replace(/\s*\n\s*/g, ' ');
}
