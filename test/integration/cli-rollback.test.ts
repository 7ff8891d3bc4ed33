// Rollback through the CLI against a real controller and agent: nothing to roll back after a first-batch
// failure (refused, release unchanged, no rollback hint), and every watch of a rollback agrees on its exit
// code and shows only the rollback's own steps, going back to the old edition.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath } from '../harness/fleet.js';

type CliResult = { code: number; stdout: string; stderr: string };

describe('rollback through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-cli-rollback-'));
  const fleet = new Fleet(dir);
  const create = (edition: string, extra: string[] = []) =>
    fleet.cli(['release', 'create', 'shop', '--edition', edition, '--batches', '1', '--drain', '2s', '--health-timeout', '3s', ...extra]);
  const idOf = (result: CliResult) => result.stdout.trim().split('\n')[0]!;

  beforeAll(async () => {
    // Given one agent serving shop, and editions 1.0, 2.0 and "bad" (its /healthz answers 500)
    await fleet.startNats();
    await fleet.startController();
    await fleet.startAgent('a1', 'blue', { shop: await freePort() });
    await fleet.adminClient.waitForAgents(['a1']);
    // Stop-first: this suite checks the quiesce ─▶ drain ─▶ restart pipeline (start-first has its own suite).
    const app = await fleet.cli(['app', 'create', 'shop', '--start', 'node server.js', '--env', 'START_DELAY_MS=50', '--stop-timeout', '2s', '--update-order', 'stop-first']);
    expect(app.code, app.stderr).toBe(0);
    for (const edition of ['1.0', '2.0', 'bad']) {
      const source = join(dir, 'src', edition);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      if (edition === 'bad') writeFileSync(join(source, 'FAIL_HEALTH'), 'drill\n');
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(dir, 'packages'), name: 'shop' });
      const installed = await fleet.cli(['edition', 'install', 'shop', edition, '--file', pkg.path]);
      expect(installed.code, installed.stderr).toBe(0);
    }
    const first = await create('1.0', ['--watch']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to roll back a release whose first batch failed, and leaves it as it was', async () => {
    const failed = await create('bad', ['--watch']);
    expect(failed.code, failed.stdout).toBe(1);
    expect(failed.stderr.trim()).toMatch(/^fleetwave: release r-\S+ ended Release failed \(batch 1 failed: .*\), not Released$/);
    expect(failed.stdout).toContain('next: fleetwave release retry');
    expect(failed.stdout).not.toContain('release rollback');
    const id = idOf(failed);
    const before = await fleet.adminClient.release(id);

    const rollback = await fleet.cli(['release', 'rollback', id, '--watch']);
    expect(rollback.code, rollback.stdout).toBe(1);
    expect(rollback.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^fleetwave: nothing to roll back: release r-\S+ moved no instance off its previous edition/)]);
    const after = await fleet.adminClient.release(id);
    expect(after.release).toEqual(before.release);
    expect(after.batches).toEqual(before.batches);
    expect(after.instances).toEqual(before.instances);
  });

  it('release rollback --watch and release watch of a rollback both exit 0 and show only the way back', async () => {
    // release rollback --watch, from the start of the rollback
    const released = await create('2.0', ['--watch']);
    expect(released.code, released.stdout + released.stderr).toBe(0);
    const watched = await fleet.cli(['release', 'rollback', idOf(released), '--watch']);
    expect(watched.code, watched.stdout + watched.stderr).toBe(0);
    expectRollbackLines(watched.stdout);

    // release watch of an operator's rollback, attached once it was asked for
    const again = await create('2.0', ['--watch']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const asked = await fleet.cli(['release', 'rollback', idOf(again)]);
    expect(asked.code, asked.stderr).toBe(0);
    const follower = await fleet.cli(['release', 'watch', idOf(again)]);
    expect(follower.code, follower.stdout + follower.stderr).toBe(0);
    expectRollbackLines(follower.stdout);
    // "Rolled back in X" is the rollback's own time, shorter than the release's life from its creation.
    const { release } = await fleet.adminClient.release(idOf(again));
    const took = /Rolled back in (\d+)ms|Rolled back in (\d+\.\d+)s/.exec(follower.stdout)!;
    const tookMs = took[1] ? Number(took[1]) : Number(took[2]) * 1000;
    expect(tookMs).toBeLessThan(Number(release!.finishedUnixMs) - Number(release!.createdUnixMs));
  });
});

/** The lines of a watched rollback: steps back to 1.0, no forward step to 2.0, the rollback's own time. */
function expectRollbackLines(stdout: string): void {
  expect(stdout).toMatch(/a1 +quiesce → drain → restart → health ✓ back on 1\.0/);
  expect(stdout).not.toMatch(/✓ 2\.0/);
  const summary = stdout.trim().split('\n').at(-1)!;
  expect(summary).toMatch(/^release r-\S+ Rolled back in (\d+ms|\d+\.\d+s): 1 rolled back/);
}
