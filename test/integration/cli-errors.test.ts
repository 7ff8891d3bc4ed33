// The CLI answers bad input and an unreachable controller with one clear line and a non-zero exit.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, freePort, runCli } from '../harness/fleet.js';

function expectOneLineError(result: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('CLI errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-cli-'));
  const fleet = new Fleet(dir);

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController();
    const app = await fleet.cli(['app', 'create', 'web', '--start', 'node server.js']);
    expect(app.code, app.stderr).toBe(0);
    const pkg = join(dir, 'app.jar');
    writeFileSync(pkg, 'not really a jar');
    const edition = await fleet.cli(['edition', 'install', 'web', '1.0', '--file', pkg]);
    expect(edition.code, edition.stderr).toBe(0);
  });

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says so when the controller cannot be reached', async () => {
    const port = await freePort();
    const result = await runCli(['release', 'list'], `127.0.0.1:${port}`);
    expectOneLineError(result, /cannot reach the controller at 127\.0\.0\.1:\d+/);
  });

  it('refuses an unknown app', async () => {
    expectOneLineError(await fleet.cli(['release', 'create', 'nope', '--edition', '1.0']), /app.*nope/i);
  });

  it('refuses an unknown edition', async () => {
    expectOneLineError(await fleet.cli(['release', 'create', 'web', '--edition', '9.9']), /edition.*9\.9/i);
  });

  it('refuses an unparsable or negative duration before sending anything', async () => {
    expectOneLineError(await fleet.cli(['release', 'create', 'web', '--edition', '1.0', '--drain', 'soon']), /drain/i);
    expectOneLineError(await fleet.cli(['release', 'create', 'web', '--edition', '1.0', '--wait', '-5s']), /wait/i);
  });

  it('refuses a batch count of 0', async () => {
    expectOneLineError(await fleet.cli(['release', 'create', 'web', '--edition', '1.0', '--batches', '0']), /batch/i);
  });

  it('refuses an unknown release and an unknown verb', async () => {
    expectOneLineError(await fleet.cli(['release', 'show', 'no-such-release']), /release.*no-such-release/i);
    expectOneLineError(await fleet.cli(['frobnicate']), /unknown command/i);
  });

  it('refuses the history and releases of an unknown app', async () => {
    expectOneLineError(await fleet.cli(['history', 'nope']), /app 'nope' does not exist/);
    expectOneLineError(await fleet.cli(['release', 'list', 'nope']), /app 'nope' does not exist/);
  });

  it('lists apps and editions as JSON', async () => {
    const editions = await fleet.cli(['edition', 'list', 'web', '--output', 'json']);
    expect(editions.code, editions.stderr).toBe(0);
    expect(JSON.parse(editions.stdout)).toMatchObject([{ app: 'web', name: '1.0', format: 'file', fileName: 'app.jar' }]);
  });

  it('refuses installing the same edition twice and keeps the first', async () => {
    const pkg = join(dir, 'other.jar');
    writeFileSync(pkg, 'another');
    expectOneLineError(await fleet.cli(['edition', 'install', 'web', '1.0', '--file', pkg]), /already/i);
    const editions = JSON.parse((await fleet.cli(['edition', 'list', 'web', '--output', 'json'])).stdout);
    expect(editions).toHaveLength(1);
    expect(editions[0].fileName).toBe('app.jar');
  });
});
