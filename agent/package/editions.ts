// The editions of one app on disk: apps/<app>/editions/<edition>/, each complete once its marker file is in it.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Written into the edition directory before it is renamed into place, so a present directory is a complete one. */
export const MARKER_FILE = '.fleetwave-edition.json';

export interface EditionMarker {
  edition: string;
  sha256: string;
  size: number;
  format: string;
  installedAt: number;
}

export function editionsDir(appDir: string): string {
  return join(appDir, 'editions');
}

export function editionDir(appDir: string, edition: string): string {
  return join(editionsDir(appDir), edition);
}

export async function readMarker(appDir: string, edition: string): Promise<EditionMarker | undefined> {
  try {
    return JSON.parse(await readFile(join(editionDir(appDir, edition), MARKER_FILE), 'utf8')) as EditionMarker;
  } catch {
    return undefined;
  }
}

/** Complete editions on disk, newest first. */
export async function listEditions(appDir: string): Promise<EditionMarker[]> {
  let names: string[];
  try {
    names = await readdir(editionsDir(appDir));
  } catch {
    return [];
  }
  const markers = await Promise.all(names.filter((n) => !n.startsWith('.')).map((n) => readMarker(appDir, n)));
  return markers.filter((m): m is EditionMarker => m !== undefined).sort((a, b) => b.installedAt - a.installedAt);
}

/** Removes the oldest editions beyond `keep`, never one in `protect` (active, previous, just installed). */
export async function pruneEditions(appDir: string, keep: number, protect: string[]): Promise<string[]> {
  const editions = await listEditions(appDir);
  const removed: string[] = [];
  let count = editions.length;
  for (const marker of [...editions].reverse()) {
    if (count <= keep) break;
    if (protect.includes(marker.edition)) continue;
    await rm(editionDir(appDir, marker.edition), { recursive: true, force: true });
    removed.push(marker.edition);
    count--;
  }
  return removed;
}

/** Deletes half-written downloads and unpack directories an interrupted agent left behind. */
export async function removeLeftovers(appDir: string): Promise<void> {
  await rm(join(appDir, 'downloads'), { recursive: true, force: true });
  let names: string[] = [];
  try {
    names = await readdir(editionsDir(appDir));
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.startsWith('.tmp-'))) {
    await rm(join(editionsDir(appDir), name), { recursive: true, force: true });
  }
}
