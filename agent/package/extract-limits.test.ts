// Package bombs: an archive that inflates beyond --max-unpacked-size, or holds more than --max-package-entries, is
// refused while it streams, and a large entry is written to disk in chunks, never held in memory whole.
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { PackageError } from '../../common/errors.js';
import { tarHeader, tempDir } from '../test-support.js';
import { extractPackage } from './extract.js';

const MiB = 1024 ** 2;
const dir = tempDir('extract-limits');
afterAll(() => dir.remove());

/** Streams `zeros` bytes of zeros (a 1 MiB buffer reused): the test never holds what the archive inflates to. */
function* zeros(bytes: number): Generator<Buffer> {
  const block = Buffer.alloc(MiB);
  for (let left = bytes; left > 0; left -= MiB) yield left >= MiB ? block : block.subarray(0, left);
}

/** A gzipped tar of `files` (name → size in zeros), then `trailing` bytes of zeros after the end-of-archive blocks. */
async function bomb(name: string, files: Record<string, number>, trailing = 0): Promise<string> {
  const file = join(dir.path, `${name}.tar.gz`);
  function* tarStream(): Generator<Buffer> {
    for (const [path, size] of Object.entries(files)) {
      yield tarHeader(path, size);
      yield* zeros(size);
      yield Buffer.alloc((512 - (size % 512)) % 512);
    }
    yield Buffer.alloc(1024);
    yield* zeros(trailing);
  }
  await pipeline(Readable.from(tarStream()), createGzip({ level: 1 }), createWriteStream(file));
  return file;
}

let n = 0;
function fresh(): string {
  const dest = join(dir.path, `out-${n++}`);
  mkdirSync(dest);
  return dest;
}

const limits = { maxUnpackedBytes: 64 * MiB, maxEntries: 100 };

describe('extractPackage within limits', () => {
  it('refuses an entry that would unpack beyond --max-unpacked-size, writing nothing', async () => {
    const file = await bomb('big-entry', { 'a.txt': 10, 'zeros.bin': 100 * MiB });
    const dest = fresh();
    const error = (await extractPackage(file, dest, limits).catch((err: unknown) => err)) as Error;
    expect(error).toBeInstanceOf(PackageError);
    expect(error.message).toBe(`package refused: it unpacks to more than ${64 * MiB} bytes (--max-unpacked-size)`);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('refuses an archive whose inflated bytes go on past the limit, even beyond its end blocks', async () => {
    const file = await bomb('trailing', { 'a.txt': 10 }, 100 * MiB);
    await expect(extractPackage(file, fresh(), limits)).rejects.toThrow(/unpacks to more than \d+ bytes \(--max-unpacked-size\)/);
  });

  it('refuses more entries than --max-package-entries', async () => {
    const files = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`f${i}.txt`, 1]));
    const file = await bomb('many', files);
    const dest = fresh();
    await expect(extractPackage(file, dest, { maxUnpackedBytes: 64 * MiB, maxEntries: 10 })).rejects.toThrow(
      'package refused: it holds more than 10 entries (--max-package-entries)',
    );
    expect(readdirSync(dest)).toEqual([]);
  });

  it('streams a large entry to disk instead of holding it in memory', async () => {
    // 256 MiB of zeros is a 1000:1 gzip: the old reader inflated a whole 16 MiB read at once and kept it.
    const size = 256 * MiB;
    const file = await bomb('large', { 'data.bin': size });
    const dest = fresh();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      await extractPackage(file, dest, { maxUnpackedBytes: 512 * MiB, maxEntries: 10 });
    } finally {
      clearInterval(sampler);
    }
    expect(statSync(join(dest, 'data.bin')).size).toBe(size);
    // Measured: about 40 MiB streaming, 176 MiB with the reader that inflated whole reads into memory.
    expect((peak - before) / MiB).toBeLessThan(96);
  }, 60_000);

  it('refuses sparse files made by GNU tar (GNU and PAX formats) instead of dropping them', async (ctx) => {
    const src = join(dir.path, 'sparse-src');
    mkdirSync(src);
    try {
      execFileSync('truncate', ['-s', '1G', join(src, 'big.dat')]);
      execFileSync('sh', ['-c', 'echo hi > small.txt'], { cwd: src });
      execFileSync('tar', ['--sparse', '-czf', join(dir.path, 'gnu-sparse.tar.gz'), 'big.dat', 'small.txt'], { cwd: src });
      execFileSync('tar', ['--format=pax', '--sparse', '-czf', join(dir.path, 'pax-sparse.tar.gz'), 'big.dat', 'small.txt'], { cwd: src });
    } catch {
      return ctx.skip('GNU tar or truncate not available');
    }
    for (const name of ['gnu-sparse', 'pax-sparse']) {
      const dest = fresh();
      await expect(extractPackage(join(dir.path, `${name}.tar.gz`), dest, limits)).rejects.toThrow(/big\.dat' is a sparse file, which packages may not contain/);
      expect(existsSync(join(dest, 'small.txt'))).toBe(false);
    }
  });
});
