// Unpacks a tar.gz package into a directory, refusing the whole archive before writing anything if one entry is unsafe.
import * as tar from 'tar';
import { PackageError } from '../../common/errors.js';

export interface ArchiveEntry {
  path: string;
  type: string;
  linkpath?: string;
}

/** Entry types a package may hold; devices, FIFOs and the exotic rest are refused. */
const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** Lists, checks, then extracts `file` into the (fresh, empty) directory `dest`. */
export async function extractPackage(file: string, dest: string): Promise<void> {
  checkEntries(await listArchive(file));
  const warnings: string[] = [];
  try {
    await tar.x({
      file,
      cwd: dest,
      strict: true,
      preserveOwner: false,
      // Defence in depth: the checks above already refused anything this filter would drop.
      filter: (_path, entry) => 'type' in entry && ALLOWED_TYPES.has(entry.type),
      onwarn: (_code, message) => void warnings.push(String(message)),
    });
  } catch (err) {
    throw new PackageError(`package could not be unpacked: ${(err as Error).message}`, { cause: err });
  }
  if (warnings.length > 0) throw new PackageError(`package could not be unpacked: ${warnings[0]}`);
}

export async function listArchive(file: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  try {
    await tar.t({
      file,
      strict: true,
      onReadEntry: (entry) => {
        entries.push({ path: entry.path, type: entry.type, linkpath: entry.linkpath });
      },
    });
  } catch (err) {
    throw new PackageError(`package is not a readable tar.gz archive: ${(err as Error).message}`, { cause: err });
  }
  return entries;
}

/**
 * Throws PackageError naming the first unsafe entry: an absolute path, a '..' component, a device or FIFO,
 * a link whose target leaves the tree, or any entry (or link target) reached through a symlink of the archive.
 */
export function checkEntries(entries: ArchiveEntry[]): void {
  const symlinks = new Set(entries.filter((e) => e.type === 'SymbolicLink').map((e) => clean(e.path)));
  for (const entry of entries) {
    const refuse = (why: string): never => {
      throw new PackageError(`package refused: entry '${entry.path}' ${why}`);
    };
    if (!ALLOWED_TYPES.has(entry.type)) refuse(`is a ${entry.type}, which packages may not contain`);
    if (entry.path.startsWith('/') || /^[A-Za-z]:/.test(entry.path)) refuse('has an absolute path');
    const parts = components(entry.path);
    if (parts.includes('..')) refuse("has a '..' component");
    for (let i = 1; i < parts.length; i++) {
      if (symlinks.has(parts.slice(0, i).join('/'))) refuse('would be written through a symlink');
    }
    if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
      const target = entry.linkpath ?? '';
      if (!target) refuse('is a link without a target');
      if (target.startsWith('/')) refuse(`links to the absolute path '${target}'`);
      // A symlink resolves from its own directory; a hard link's target is named from the archive root.
      const base = entry.type === 'SymbolicLink' ? parts.slice(0, -1) : [];
      const problem = resolveInside(base, components(target), symlinks);
      if (problem) refuse(`links to '${target}', which ${problem}`);
    }
  }
}

/** Walks `target` from `base`; says why it is unsafe, or returns undefined when it stays inside without crossing a symlink. */
function resolveInside(base: string[], target: string[], symlinks: Set<string>): string | undefined {
  const stack = [...base];
  for (let i = 0; i < target.length; i++) {
    const part = target[i]!;
    if (part === '..') {
      if (stack.length === 0) return 'leaves the package';
      stack.pop();
      continue;
    }
    stack.push(part);
    // A symlink met midway would make the lexical walk above lie about where we are.
    if (i < target.length - 1 && symlinks.has(stack.join('/'))) return 'passes through a symlink';
  }
  return undefined;
}

function components(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

function clean(path: string): string {
  return components(path).join('/');
}
