// Builds an edition package of a folder: a tar.gz with the files at the archive
// root and a VERSION file naming the edition, as `fleetwave edition install --file` takes.
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from 'tar';

export interface BuiltPackage {
  /** Absolute path of the .tar.gz. */
  path: string;
  sha256: string;
  size: number;
}

/**
 * Packages `sourceDir` as edition `edition` into `outDir/<name>-<edition>.tar.gz` (name default `app`).
 * The archive is reproducible: same files, same bytes (fixed mtimes, portable headers).
 */
export async function buildEdition(o: { sourceDir: string; edition: string; outDir: string; name?: string }): Promise<BuiltPackage> {
  const name = o.name ?? 'app';
  const stage = join(o.outDir, `.stage-${name}-${o.edition}`);
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  try {
    await cp(o.sourceDir, stage, { recursive: true, filter: (src) => !/(^|\/)(node_modules|\.git)(\/|$)/.test(src) });
    await writeFile(join(stage, 'VERSION'), `${o.edition}\n`);
    const entries = (await readdir(stage)).sort();
    const path = join(o.outDir, `${name}-${o.edition}.tar.gz`);
    await create({ gzip: true, file: path, cwd: stage, portable: true, mtime: new Date(0) }, entries);
    const bytes = await readFile(path);
    return { path, sha256: createHash('sha256').update(bytes).digest('hex'), size: (await stat(path)).size };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
