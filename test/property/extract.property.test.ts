// Property: whatever entries an archive holds, extraction never writes outside its directory, and an archive with
// an unsafe entry (absolute path, '..', link leaving the tree, device) is refused before anything is written.
import { lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { PackageError } from '../../common/errors.js';
import { checkEntries, extractPackage, type ArchiveEntry } from '../../agent/package/extract.js';
import { runs } from './seed.js';
import { rawTarball } from '../../agent/test-support.js';

/** ustar typeflags and the names tar reports for them. */
const TYPES = { '0': 'File', '5': 'Directory', '2': 'SymbolicLink', '1': 'Link', '3': 'CharacterDevice', '6': 'FIFO' } as const;
type Flag = keyof typeof TYPES;

interface Entry {
  path: string;
  flag: Flag;
  linkpath: string;
}

const part = fc.constantFrom('a', 'b', 'c.txt', '..', '.', 'etc', '');
const pathArb = fc
  .tuple(fc.constantFrom('', '', '', '/', './'), fc.array(part, { minLength: 1, maxLength: 4 }))
  .map(([prefix, parts]) => prefix + parts.join('/'))
  .filter((p) => p.replace(/[/.]/g, '') !== '');
const entryArb: fc.Arbitrary<Entry> = fc.record({
  path: pathArb,
  flag: fc.constantFrom<Flag>('0', '0', '5', '2', '1', '3', '6'),
  linkpath: pathArb,
});

/** A hand-built tar.gz of the entries (a link's target only on links; a file holds one byte). */
function tarball(file: string, entries: Entry[]): void {
  rawTarball(
    file,
    entries.map((e) => ({ path: e.path, type: e.flag, linkpath: e.flag === '1' || e.flag === '2' ? e.linkpath : '', body: e.flag === '0' ? 'x' : '' })),
  );
}

/** Every path under `dir` (not following symlinks). */
function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return lstatSync(path).isDirectory() ? [path, ...walk(path)] : [path];
  });
}

const inside = (root: string, path: string) => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

describe('the package extractor, on random archives', () => {
  const base = join(tmpdir(), `fleetwave-extract-prop-${process.pid}`);
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  let n = 0;

  it('never writes outside its directory, and refuses unsafe archives before writing anything', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entryArb, { minLength: 1, maxLength: 6 }), async (entries) => {
        // A sandbox: the archive file, the destination, and nothing else, so any escape shows up as a new name.
        const sandbox = join(base, `case-${n++}`);
        const dest = join(sandbox, 'dest');
        mkdirSync(dest, { recursive: true });
        const file = join(sandbox, 'pkg.tar.gz');
        tarball(file, entries);
        const listed: ArchiveEntry[] = entries.map((e) => ({ path: e.path, type: TYPES[e.flag], linkpath: e.flag === '1' || e.flag === '2' ? e.linkpath : undefined }));
        let unsafe = false;
        try {
          checkEntries(listed);
        } catch (err) {
          expect(err).toBeInstanceOf(PackageError);
          unsafe = true;
        }
        try {
          await extractPackage(file, dest);
          expect(unsafe).toBe(false);
        } catch (err) {
          expect(err).toBeInstanceOf(PackageError);
        }
        if (unsafe) expect(readdirSync(dest)).toEqual([]);
        expect(readdirSync(sandbox).sort()).toEqual(['dest', 'pkg.tar.gz']);
        for (const path of walk(dest)) {
          expect(inside(dest, path)).toBe(true);
          const stat = lstatSync(path);
          expect(stat.isFile() || stat.isDirectory() || stat.isSymbolicLink()).toBe(true);
          if (stat.isSymbolicLink()) expect(inside(dest, resolve(dirname(path), readlinkSync(path)))).toBe(true);
        }
        rmSync(sandbox, { recursive: true, force: true });
      }),
      runs(150),
    );
  }, 120_000);

  it("refuses every entry with an absolute path or a '..' component", () => {
    fc.assert(
      fc.property(pathArb, (path) => {
        const bad = path.startsWith('/') || path.split('/').includes('..');
        const check = () => checkEntries([{ path, type: 'File' }]);
        if (bad) expect(check).toThrow(PackageError);
        else expect(check).not.toThrow();
      }),
      runs(500),
    );
  });
});
