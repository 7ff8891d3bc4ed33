// `edition install` checks a package at the door against a real controller: an unsafe or oversized tar.gz, or a URL
// whose sha256 or size is wrong, is refused in one line with exit 2, and nothing is listed or stored afterwards.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, rawTarball, serveFiles } from '../../agent/test-support.js';
import type { Edition } from '../../proto/gen/fleetwave/v1/admin.js';
import { Fleet } from '../harness/fleet.js';

type CliResult = { code: number; stdout: string; stderr: string };

function expectBadInput(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('edition install checks the package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-install-checks-'));
  const fleet = new Fleet(dir);
  let files: Awaited<ReturnType<typeof serveFiles>>;
  const artifacts = () => readdirSync(join(dir, 'controller', 'artifacts'));
  /** What the controller lists, read over gRPC (a CLI process per check would only slow the suite). */
  const editions = (): Promise<Edition[]> =>
    new Promise((resolve, reject) =>
      fleet.adminClient.client.listEditions({ app: 'web' }, new Metadata(), (err, res) => (err ? reject(err) : resolve(res.editions))),
    );

  beforeAll(async () => {
    files = await serveFiles(dir);
    await fleet.startNats();
    await fleet.startController(['--max-unpacked-size', '1MiB', '--max-package-entries', '20']);
    const app = await fleet.cli(['app', 'create', 'web', '--start', 'java -jar hello.jar']);
    expect(app.code, app.stderr).toBe(0);
  });

  afterAll(async () => {
    await files?.close();
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const unsafe: Array<[string, Parameters<typeof rawTarball>[1], RegExp]> = [
    ["a '../evil' entry", [{ path: 'ok.txt', body: 'ok' }, { path: '../evil', body: 'x' }], /^fleetwave: edition: package refused: entry '\.\.\/evil' has a '\.\.' component$/],
    ['an absolute path', [{ path: '/etc/evil', body: 'x' }], /entry '\/etc\/evil' has an absolute path$/],
    ['a symlink out of the tree', [{ path: 'etc', type: '2', linkpath: '../../etc' }], /entry 'etc' links to '\.\.\/\.\.\/etc', which leaves the package$/],
    ['a sparse file', [{ path: 'big.dat', type: 'S', body: 'x' }], /entry 'big\.dat' is a sparse file, which packages may not contain/],
    ['more entries than --max-package-entries', Array.from({ length: 21 }, (_, i) => ({ path: `f${i}`, body: 'x' })), /holds more than 20 entries \(--max-package-entries\)$/],
    ['more bytes than --max-unpacked-size', [{ path: 'big.bin', body: 'x'.repeat(2 * 1024 * 1024) }], /unpacks to more than 1048576 bytes \(--max-unpacked-size\)$/],
  ];

  it.each(unsafe)('refuses an upload with %s, and lists and stores nothing', async (name, entries, message) => {
    const pkg = rawTarball(join(dir, `${name.replace(/\W+/g, '-')}.tar.gz`), entries);
    expectBadInput(await fleet.cli(['edition', 'install', 'web', '1.0', '--file', pkg]), message);
    expect(await editions()).toEqual([]);
    expect(artifacts()).toEqual([]);
  });

  it('refuses a URL whose sha256 or size is wrong, or that does not answer, and lists nothing', async () => {
    const pkg = await buildPackage(dir, 'good-1.0');
    const url = `${files.url}/good-1.0.tar.gz`;
    expectBadInput(await fleet.cli(['edition', 'install', 'web', '1.0', '--url', url, '--sha256', 'ab'.repeat(32)]), /^fleetwave: edition: http:\S+ was refused: package sha256 mismatch: got [0-9a-f]{64}, expected (ab){32}$/);
    expectBadInput(await fleet.cli(['edition', 'install', 'web', '1.0', '--url', url, '--sha256', pkg.sha256, '--size', String(pkg.size + 1)]), /package size mismatch: got \d+ bytes, expected \d+$/);
    expectBadInput(await fleet.cli(['edition', 'install', 'web', '1.0', '--url', `${files.url}/missing.tar.gz`, '--sha256', pkg.sha256]), /HTTP 404$/);
    expect(await editions()).toEqual([]);
    expect(artifacts()).toEqual([]);
  });

  it('refuses an unsafe tar.gz behind a URL too', async () => {
    const pkg = rawTarball(join(dir, 'evil-url.tar.gz'), [{ path: '../evil', body: 'x' }]);
    const sha256 = createHash('sha256').update(readFileSync(pkg)).digest('hex');
    expectBadInput(await fleet.cli(['edition', 'install', 'web', '1.0', '--url', `${files.url}/evil-url.tar.gz`, '--sha256', sha256]), /entry '\.\.\/evil' has a '\.\.' component$/);
    expect(await editions()).toEqual([]);
  });

  it('installs a URL package once verified, with the size it has', async () => {
    const pkg = await buildPackage(dir, 'web-2.0');
    const installed = await fleet.cli(['edition', 'install', 'web', '2.0', '--url', `${files.url}/web-2.0.tar.gz`, '--sha256', pkg.sha256]);
    expect(installed.code, installed.stderr).toBe(0);
    expect(await editions()).toMatchObject([{ name: '2.0', size: pkg.size, format: 'tar.gz' }]);
  });

  it('names a single-file package with --as, and refuses a name that is not a plain file name', async () => {
    const jar = join(dir, 'hello-3.0.jar');
    writeFileSync(jar, 'PK not really a jar');
    for (const bad of ['../hello.jar', 'lib/hello.jar', '..', '.hidden']) {
      expectBadInput(await fleet.cli(['edition', 'install', 'web', '3.0', '--file', jar, '--as', bad]), /^fleetwave: --as: '.*' is not a plain file name/);
    }
    const tgz = (await buildPackage(dir, 'web-4.0')).file;
    expectBadInput(await fleet.cli(['edition', 'install', 'web', '4.0', '--file', tgz, '--as', 'app.tgz']), /--as names a single-file package/);
    const installed = await fleet.cli(['edition', 'install', 'web', '3.0', '--file', jar, '--as', 'hello.jar']);
    expect(installed.code, installed.stderr).toBe(0);
    const listed = (await editions()).find((e) => e.name === '3.0');
    expect(listed).toMatchObject({ format: 'file', fileName: 'hello.jar' });
  });
});
