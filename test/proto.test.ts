// The committed ts-proto output must be what `make proto` generates from the .proto files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './harness/fleet.js';

describe('generated proto code', () => {
  const out = mkdtempSync(join(tmpdir(), 'fleetwave-proto-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('matches a fresh generation from proto/', () => {
    execFileSync(join(REPO_ROOT, 'node_modules/.bin/buf'), ['generate', '--output', out], { cwd: REPO_ROOT });
    const dir = 'proto/gen/fleetwave/v1';
    const fresh = readdirSync(join(out, dir)).sort();
    expect(readdirSync(join(REPO_ROOT, dir)).sort()).toEqual(fresh);
    for (const file of fresh) {
      const committed = readFileSync(join(REPO_ROOT, dir, file), 'utf8');
      expect(committed, `${dir}/${file} is stale: run make proto`).toBe(readFileSync(join(out, dir, file), 'utf8'));
    }
  });
});
