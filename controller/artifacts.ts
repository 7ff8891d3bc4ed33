// Package artifacts uploaded through the admin API, stored by content hash under <data-dir>/artifacts/.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export function artifactsDir(dataDir: string): string {
  return join(dataDir, 'artifacts');
}

export function artifactPath(dataDir: string, sha256: string): string {
  return join(artifactsDir(dataDir), sha256);
}

/** Writes the content (temp file + rename, so a reader never sees half a file); returns its sha256 and size. */
export function storeArtifact(dataDir: string, content: Uint8Array): { sha256: string; size: number } {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const path = artifactPath(dataDir, sha256);
  if (!existsSync(path)) {
    mkdirSync(artifactsDir(dataDir), { recursive: true });
    const temp = `${path}.${randomUUID()}.tmp`;
    writeFileSync(temp, content, { flush: true });
    renameSync(temp, path);
  }
  return { sha256, size: content.length };
}
