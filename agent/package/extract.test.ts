// Unsafe tarballs (hand-built headers, as an attacker would make them) are refused before anything is written.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PackageError } from '../../common/errors.js';
import { rawTarball, tempDir } from '../test-support.js';
import { checkEntries, extractPackage } from './extract.js';

interface RawEntry {
  path: string;
  /** ustar typeflag: 0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, 5 directory, 6 FIFO, S GNU sparse file. */
  type: '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'S';
  linkpath?: string;
  body?: string;
}

/** A gzipped tar built byte by byte, so it can hold what tar's own writer would never produce. */
function tarball(dir: string, name: string, entries: RawEntry[]): string {
  return rawTarball(join(dir, `${name}.tar.gz`), entries);
}

describe('extractPackage', () => {
  const dir = tempDir('extract');
  afterAll(() => dir.remove());
  let n = 0;
  const fresh = () => {
    const dest = join(dir.path, `out-${n++}`);
    mkdirSync(dest);
    return dest;
  };

  it('unpacks files, directories and links that stay inside', async () => {
    const file = tarball(dir.path, 'good', [
      { path: 'app/', type: '5' },
      { path: 'app/server.js', type: '0', body: 'console.log(1)' },
      { path: 'app/lib/', type: '5' },
      { path: 'app/lib/current', type: '2', linkpath: '../server.js' },
      { path: 'app/copy.js', type: '1', linkpath: 'app/server.js' },
    ]);
    const dest = fresh();
    await extractPackage(file, dest);
    expect(readFileSync(join(dest, 'app/server.js'), 'utf8')).toBe('console.log(1)');
    expect(readlinkSync(join(dest, 'app/lib/current'))).toBe('../server.js');
    expect(readFileSync(join(dest, 'app/copy.js'), 'utf8')).toBe('console.log(1)');
  });

  const unsafe: [string, RawEntry[], RegExp][] = [
    ['an absolute path', [{ path: '/tmp/evil', type: '0', body: 'x' }], /absolute path/],
    ['a .. component', [{ path: 'a/../../evil', type: '0', body: 'x' }], /'\.\.' component/],
    ['a symlink out of the tree', [{ path: 'link', type: '2', linkpath: '../../etc' }], /leaves the package/],
    ['an absolute symlink', [{ path: 'link', type: '2', linkpath: '/etc/passwd' }], /absolute path/],
    ['a hard link out of the tree', [{ path: 'hard', type: '1', linkpath: '../outside' }], /leaves the package/],
    ['a file written through a symlink', [{ path: 'sub', type: '2', linkpath: '.' }, { path: 'sub/x', type: '0', body: 'x' }], /through a symlink/],
    ['a symlink that climbs through another symlink', [{ path: 'd', type: '5' }, { path: 'd/up', type: '2', linkpath: '..' }, { path: 'esc', type: '2', linkpath: 'd/up/..' }], /passes through a symlink/],
    ['a character device', [{ path: 'tty', type: '3' }], /CharacterDevice/],
    ['a block device', [{ path: 'disk', type: '4' }], /BlockDevice/],
    ['a FIFO', [{ path: 'pipe', type: '6' }], /FIFO/],
    // tar skips a type it does not know without a word: the file would be missing, not refused.
    ['a GNU sparse file', [{ path: 'big.dat', type: 'S', body: 'x' }], /'big\.dat' is a sparse file/],
    ['a PAX sparse file (GNU tar names it GNUSparseFile.N)', [{ path: 'GNUSparseFile.42/big.dat', type: '0', body: 'map' }], /is a sparse file/],
  ];

  it.each(unsafe)('refuses %s and writes nothing', async (name, entries, message) => {
    // A harmless first entry proves the refusal comes before any write.
    const file = tarball(dir.path, name.replace(/\W+/g, '-'), [{ path: 'first.txt', type: '0', body: 'ok' }, ...entries]);
    const dest = fresh();
    const error = await extractPackage(file, dest).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PackageError);
    expect((error as Error).message).toMatch(message);
    expect(readdirSync(dest)).toEqual([]);
    expect(existsSync(join(dir.path, 'evil'))).toBe(false);
  });

  it('refuses a file that is not a tar.gz', async () => {
    const file = join(dir.path, 'garbage.tar.gz');
    writeFileSync(file, 'not a tarball at all');
    const dest = fresh();
    await expect(extractPackage(file, dest)).rejects.toBeInstanceOf(PackageError);
  });
});

describe('checkEntries', () => {
  it('accepts links to links inside the tree, in any order', () => {
    expect(() =>
      checkEntries([
        { path: 'lib/libfoo.so', type: 'SymbolicLink', linkpath: 'libfoo.so.1' },
        { path: 'lib/libfoo.so.1', type: 'SymbolicLink', linkpath: 'libfoo.so.1.2' },
        { path: 'lib/libfoo.so.1.2', type: 'File' },
      ]),
    ).not.toThrow();
  });

  it('refuses a write through a symlink declared later in the archive', () => {
    expect(() => checkEntries([{ path: 'x/file', type: 'File' }, { path: 'x', type: 'SymbolicLink', linkpath: 'y' }])).toThrow(/through a symlink/);
  });
});
