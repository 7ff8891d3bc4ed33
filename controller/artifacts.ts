// Package artifacts uploaded through the admin API, stored by content hash under <data-dir>/artifacts/
// (written by package-check.ts once the package passed its checks).
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export function artifactsDir(dataDir: string): string {
  return join(dataDir, 'artifacts');
}

export function artifactPath(dataDir: string, sha256: string): string {
  return join(artifactsDir(dataDir), sha256);
}

export function sha256Of(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}
