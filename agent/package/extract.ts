// Unpacks a package archive into a directory: the whole archive is checked (paths, links, types, sparse files, size
// and entry limits) before anything is written, then unpacked as a stream within the same limits.
import { DEFAULT_ARCHIVE_LIMITS, inspectArchive, unpackArchive, type ArchiveLimits } from '../../common/archive.js';

export { checkEntries, type ArchiveEntry, type ArchiveLimits } from '../../common/archive.js';

/** Checks, then extracts `file` into the (fresh, empty) directory `dest`; the caller removes `dest` when this throws. */
export async function extractPackage(file: string, dest: string, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<void> {
  await inspectArchive(file, limits);
  // The file is the agent's own verified download, so the second pass meets what the first one checked.
  await unpackArchive(file, dest, limits);
}
