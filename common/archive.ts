// Reads a package archive (tar.gz, or plain tar) as a bounded stream, shared by the controller (checks at install) and
// the agent (checks, then unpacks). Nothing here holds an entry in memory: the gzip is inflated in small chunks and
// fed to tar with backpressure, and the inflated bytes and the entries are counted against limits as they come.
//
//   file ─▶ read 64 KiB ─▶ gunzip (chunked) ─▶ meter (unpacked bytes) ─▶ tar Parser / Unpack (entries, types, paths)
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar';
import { PackageError } from './errors.js';

export interface ArchiveEntry {
  path: string;
  type: string;
  linkpath?: string;
}

export interface ArchiveLimits {
  /** Most bytes the archive may inflate to (the tar stream: contents, headers and padding). */
  maxUnpackedBytes: number;
  /** Most entries (files, directories, links) it may hold. */
  maxEntries: number;
}

/** 8 GiB: four times the agent's default --max-package-size, far beyond any app package, far below a bomb's aim. */
export const DEFAULT_MAX_UNPACKED_BYTES = 8 * 1024 ** 3;
export const DEFAULT_MAX_PACKAGE_ENTRIES = 100_000;
export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = { maxUnpackedBytes: DEFAULT_MAX_UNPACKED_BYTES, maxEntries: DEFAULT_MAX_PACKAGE_ENTRIES };

/** Entry types a package may hold; devices, FIFOs, sparse files and the exotic rest are refused. */
export const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** GNU tar names a sparse file stored in PAX format (GNU.sparse.* keys, which tar libraries drop) like this. */
const PAX_SPARSE_DIR = /^GNUSparseFile\.\d+$/;

const READ_CHUNK = 64 * 1024;

/** Lists the archive within `limits` and checks every entry; throws a one-line PackageError on the first problem. */
export async function inspectArchive(file: string, limits: ArchiveLimits): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  const parser = new tar.Parser({ strict: true });
  const budget = new Budget(limits, (err) => parser.abort(err));
  const onEntry = (entry: tar.ReadEntry): void => {
    // Data is skipped, not kept: listing an archive costs no memory per entry beyond its name.
    entry.resume();
    if (budget.admit(entry)) entries.push({ path: entry.path, type: entry.type, linkpath: entry.linkpath });
  };
  parser.on('entry', onEntry);
  // tar skips entries of types it does not know (a GNU sparse file among them) without a word: list them to refuse them.
  parser.on('ignoredEntry', onEntry);
  await feed(file, parser, budget, 'package is not a readable tar.gz archive');
  checkEntries(entries);
  return entries;
}

/** Unpacks `file` into the existing directory `dest`, within `limits`; the caller removes `dest` when this throws. */
export async function unpackArchive(file: string, dest: string, limits: ArchiveLimits): Promise<void> {
  const unpack = new tar.Unpack({
    cwd: dest,
    strict: true,
    preserveOwner: false,
    // Defence in depth: inspectArchive already refused anything this filter would drop.
    filter: (_path, entry) => 'type' in entry && ALLOWED_TYPES.has(entry.type),
  });
  const budget = new Budget(limits, (err) => unpack.abort(err));
  unpack.on('entry', (entry: tar.ReadEntry) => void budget.admit(entry));
  await feed(file, unpack, budget, 'package could not be unpacked');
}

/** Counts entries and bytes; `fail` aborts the parser with the first limit crossed. */
class Budget {
  entries = 0;
  bytes = 0;
  declared = 0;
  error: PackageError | undefined;

  constructor(
    private readonly limits: ArchiveLimits,
    private readonly fail: (err: PackageError) => void,
  ) {}

  /** False (and the parse aborted) when this entry crosses a limit or is a sparse file. */
  admit(entry: tar.ReadEntry): boolean {
    if (this.error) return false;
    this.entries++;
    this.declared += entry.size ?? 0;
    if (this.entries > this.limits.maxEntries) {
      return this.refuse(`package refused: it holds more than ${this.limits.maxEntries} entries (--max-package-entries)`);
    }
    // Caught at the header: a 1 TiB entry is refused before a byte of it is inflated.
    if (this.declared > this.limits.maxUnpackedBytes) return this.refuse(overLimit(this.limits.maxUnpackedBytes));
    const sparse = entry.type === 'SparseFile' || entry.path.split('/').some((p) => PAX_SPARSE_DIR.test(p));
    if (sparse) return this.refuse(`package refused: entry '${entry.path}' is a sparse file, which packages may not contain (pack it without --sparse)`);
    return true;
  }

  count(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.limits.maxUnpackedBytes && !this.error) this.refuse(overLimit(this.limits.maxUnpackedBytes));
  }

  private refuse(message: string): false {
    this.error = new PackageError(message);
    this.fail(this.error);
    return false;
  }
}

function overLimit(max: number): string {
  return `package refused: it unpacks to more than ${max} bytes (--max-unpacked-size)`;
}

/** Streams the file's tar bytes into `sink` honouring its backpressure; resolves once the sink has ended. */
async function feed(file: string, sink: tar.Parser, budget: Budget, what: string): Promise<void> {
  const failed = new Promise<never>((_, reject) => {
    sink.on('error', reject);
    sink.on('abort', reject);
  });
  failed.catch(() => {});
  const ended = once(sink, 'end');
  ended.catch(() => {});
  // Past its end-of-archive blocks tar keeps appending what it is given to one buffer (quadratic time): trailing bytes
  // are only counted, so they still cannot inflate beyond the limit.
  let atEnd = false;
  sink.on('eof', () => (atEnd = true));
  const consume = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) {
      budget.count(chunk.length);
      if (budget.error) throw budget.error;
      if (!atEnd && !sink.write(chunk)) await Promise.race([once(sink, 'drain'), failed]);
    }
    sink.end();
    await Promise.race([ended, failed]);
  };
  let input: ReturnType<typeof createReadStream> | undefined;
  try {
    const gzip = await isGzip(file);
    input = createReadStream(file, { highWaterMark: READ_CHUNK });
    await Promise.race([failed, gzip ? pipeline(input, createGunzip({ chunkSize: READ_CHUNK }), consume) : pipeline(input, consume)]);
  } catch (err) {
    // The parser may have failed first: stop reading the file.
    input?.destroy();
    if (budget.error) throw budget.error;
    if (err instanceof PackageError) throw err;
    throw new PackageError(`${what}: ${oneLine((err as Error).message)}`, { cause: err });
  }
  if (budget.error) throw budget.error;
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
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
    if (entry.type === 'SparseFile') refuse('is a sparse file, which packages may not contain (pack it without --sparse)');
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
