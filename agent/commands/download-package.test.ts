// DownloadPackage against a real local HTTP server: verify, unpack, idempotence, file format, pruning.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import type { DownloadPackage } from '../../proto/gen/fleetwave/v1/agent.js';
import type { Instance } from '../instance.js';
import { compileAgentOptions } from '../options.js';
import { listEditions } from '../package/editions.js';
import { AgentState } from '../state.js';
import { buildPackage, serveFiles, tempDir, type BuiltPackage } from '../test-support.js';
import { downloadPackage } from './download-package.js';
import type { CommandContext } from './types.js';

const logger = createLogger({ name: 'download-test', level: 'silent' });
const dir = tempDir('download');
let files: Awaited<ReturnType<typeof serveFiles>>;
const packages: Record<string, BuiltPackage> = {};
let state: AgentState;

beforeAll(async () => {
  for (const edition of ['1.0', '2.0', '3.0', '4.0', '5.0']) packages[edition] = await buildPackage(dir.path, edition, { 'server.js': `// edition ${edition}` });
  files = await serveFiles(dir.path);
  state = await AgentState.open(join(dir.path, 'agent'));
});
afterAll(async () => {
  await files.close();
  dir.remove();
});

function context(activeEdition = '', flags: { maxUnpackedSize?: string } = {}): CommandContext {
  const appDir = state.appDir('shop');
  // Only what the handler reads of an instance.
  const instance = { app: 'shop', appDir, activeEdition, supervisor: { edition: activeEdition } } as unknown as Instance;
  return {
    command: { commandId: 'x', app: 'shop', deadlineUnixMs: 0, timeoutMs: 0, releaseId: '' },
    instance,
    instances: new Map([['shop', instance]]),
    state,
    events: { publish: () => {} },
    options: compileAgentOptions({ keepEditions: '3', bootId: 'b', ...flags }),
    logger,
    signal: new AbortController().signal,
    progress: {},
  };
}

const body = (edition: string, extra: Partial<DownloadPackage> = {}): DownloadPackage => ({
  edition,
  url: `${files.url}/${edition}.tar.gz`,
  sha256: packages[edition]!.sha256,
  size: packages[edition]!.size,
  format: 'tar.gz',
  fileName: '',
  keepEditions: 0,
  ...extra,
});

describe('downloadPackage', () => {
  it('unpacks a verified package and does nothing the second time', async () => {
    await downloadPackage.run(context(), body('1.0'));
    expect(readFileSync(join(state.appDir('shop'), 'editions/1.0/server.js'), 'utf8')).toBe('// edition 1.0');
    const before = files.requests();
    await downloadPackage.run(context(), body('1.0'));
    expect(files.requests()).toBe(before);
  });

  it('refuses a size or sha256 mismatch with one clear line and leaves nothing', async () => {
    await expect(downloadPackage.run(context(), body('2.0', { size: packages['2.0']!.size + 1 }))).rejects.toThrow(/^package size mismatch: got \d+ bytes, expected \d+$/);
    await expect(downloadPackage.run(context(), body('2.0', { sha256: '0'.repeat(64) }))).rejects.toThrow(/^package sha256 mismatch/);
    await expect(downloadPackage.run(context(), body('2.0', { url: `${files.url}/missing.tar.gz` }))).rejects.toThrow(/HTTP 404/);
    expect(existsSync(join(state.appDir('shop'), 'editions/2.0'))).toBe(false);
  });

  it('fails on a package over --max-unpacked-size with one line and leaves no partial edition behind', async () => {
    const big = await buildPackage(dir.path, 'big', { 'data.bin': 'x'.repeat(200_000) });
    const step = downloadPackage.run(context('', { maxUnpackedSize: '100kB' }), body('1.0', { edition: '6.0', url: `${files.url}/big.tar.gz`, sha256: big.sha256, size: big.size }));
    await expect(step).rejects.toThrow(/^package refused: it unpacks to more than 100000 bytes \(--max-unpacked-size\)$/);
    const appDir = state.appDir('shop');
    expect(existsSync(join(appDir, 'editions/6.0'))).toBe(false);
    expect(readdirSync(join(appDir, 'editions')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(readdirSync(join(appDir, 'downloads'))).toEqual([]);
  });

  it('stores a "file" package under its file name', async () => {
    await downloadPackage.run(context(), body('2.0', { url: `${files.url}/2.0.tar.gz`, format: 'file', fileName: 'app.jar' }));
    expect(readFileSync(join(state.appDir('shop'), 'editions/2.0/app.jar'))).toEqual(readFileSync(packages['2.0']!.file));
    await expect(downloadPackage.run(context(), body('3.0', { format: 'file', fileName: '../escape' }))).rejects.toThrow(/file_name/);
  });

  it('keeps at most keep_editions, never the active or previous one', async () => {
    await state.updateApp('shop', { activeEdition: '1.0', previousEdition: '2.0' });
    for (const edition of ['3.0', '4.0', '5.0']) await downloadPackage.run(context('1.0'), body(edition, { keepEditions: 3 }));
    const kept = (await listEditions(state.appDir('shop'))).map((e) => e.edition);
    expect(kept.sort()).toEqual(['1.0', '2.0', '5.0']);
    expect(state.app('shop').keptEditions).toEqual(['5.0', '2.0', '1.0']);
  });

  it('refuses an edition name that is not a plain directory name', async () => {
    await expect(downloadPackage.run(context(), body('1.0', { edition: '../../etc' }))).rejects.toThrow(/not a safe directory name/);
  });
});
