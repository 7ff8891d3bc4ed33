// The agent's package size limit (--max-package-size): refused before the download when the size is known, during it otherwise.
import { existsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PackageError } from '../../common/errors.js';
import { serveFiles, tempDir } from '../test-support.js';
import { downloadVerified } from './fetch.js';

const dir = tempDir('fetch-limit');
let files: Awaited<ReturnType<typeof serveFiles>>;
const body = Buffer.alloc(64 * 1024, 7);
const sha256 = createHash('sha256').update(body).digest('hex');

beforeAll(async () => {
  writeFileSync(join(dir.path, 'big.bin'), body);
  files = await serveFiles(dir.path);
});
afterAll(async () => {
  await files.close();
  dir.remove();
});

describe('downloadVerified with a size limit', () => {
  const signal = new AbortController().signal;
  it('refuses a package whose declared size is over the limit without fetching it', async () => {
    const before = files.requests();
    const dest = join(dir.path, 'a.part');
    await expect(downloadVerified({ url: `${files.url}/big.bin`, sha256, size: body.length, maxBytes: 1024 }, dest, signal)).rejects.toThrow(/over the agent's limit of 1024 bytes/);
    expect(files.requests()).toBe(before);
  });

  it('stops a download of unknown size once it passes the limit, and leaves no file', async () => {
    const dest = join(dir.path, 'b.part');
    await expect(downloadVerified({ url: `${files.url}/big.bin`, sha256, size: 0, maxBytes: 1024 }, dest, signal)).rejects.toThrow(PackageError);
    expect(existsSync(dest)).toBe(false);
  });

  it('requires a sha256 and accepts a package within the limit', async () => {
    await expect(downloadVerified({ url: `${files.url}/big.bin`, sha256: '', size: 0 }, join(dir.path, 'c.part'), signal)).rejects.toThrow(/sha256/);
    await downloadVerified({ url: `${files.url}/big.bin`, sha256, size: 0, maxBytes: body.length }, join(dir.path, 'd.part'), signal);
    expect(existsSync(join(dir.path, 'd.part'))).toBe(true);
  });
});
