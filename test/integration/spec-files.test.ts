// Releases and apps as files against a real controller and agents: examples/app.yaml applied (created, unchanged,
// refused while a release runs, updated with a change record), examples/release.yaml planned with --dry-run (the
// controller's planner over the real instances, nothing created) and then released through its checkpoint.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';

const APP_FILE = repoPath('examples/app.yaml');
const RELEASE_FILE = repoPath('examples/release.yaml');

describe('release and app files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-spec-files-'));
  const fleet = new Fleet(dir);
  const json = async (args: string[]) => {
    const result = await fleet.cli([...args, '-o', 'json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Array<Record<string, unknown>>;
  };

  beforeAll(async () => {
    // Given three agents of group blue serving shop
    await fleet.startNats();
    await fleet.startController();
    for (const id of ['a1', 'a2', 'a3']) await fleet.startAgent(id, 'blue', { shop: await freePort() });
    await fleet.adminClient.waitForAgents(['a1', 'a2', 'a3']);
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('app apply creates the app, then finds it unchanged', async () => {
    const created = await fleet.cli(['app', 'apply', '-f', APP_FILE]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toBe('app shop created: node server.js');
    const again = await fleet.cli(['app', 'apply', '-f', APP_FILE]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe('app shop unchanged');
    const [app] = await json(['app', 'list']);
    expect(app).toMatchObject({ name: 'shop', env: { START_DELAY_MS: '50' }, stopTimeoutMs: 2000, updateOrder: 'start-first', healthPath: '/healthz' });
    for (const edition of ['2.0']) {
      const source = join(dir, 'src', edition);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(dir, 'packages'), name: 'shop' });
      const installed = await fleet.cli(['edition', 'install', 'shop', edition, '--file', pkg.path]);
      expect(installed.code, installed.stderr).toBe(0);
    }
  }, 60_000);

  it('release create --dry-run prints the plan of the real planner and creates nothing', async () => {
    const historyBefore = await json(['history', 'shop']);
    const planned = await fleet.cli(['release', 'create', '-f', RELEASE_FILE, '--dry-run']);
    expect(planned.code, planned.stderr).toBe(0);
    const lines = planned.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/).join(' '));
    expect(lines).toEqual([
      'dry run: shop 2.0 to group all (rolling) in 2 batch(es), 3 instance(s); nothing was created',
      'BATCH GROUP COUNT CHECKPOINT INSTANCES',
      '1 blue 2 - a1 a2',
      '2 blue 1 approval a3',
    ]);
    // A flag beside the file changes the plan; a plan the instances cannot fit is refused as a create would be.
    const three = await fleet.cli(['release', 'create', 'shop', '-f', RELEASE_FILE, '--dry-run', '--batches', '3']);
    expect(three.stdout).toContain('in 3 batch(es), 3 instance(s)');
    const tooMany = await fleet.cli(['release', 'create', '-f', RELEASE_FILE, '--dry-run', '--batches', '4']);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr.trim()).toBe("fleetwave: 4 batches for group 'blue' but it has only 3 instance(s)");
    // Nothing was created: no release, no change record.
    expect(await json(['release', 'list', 'shop'])).toEqual([]);
    expect(await json(['history', 'shop'])).toEqual(historyBefore);
  }, 60_000);

  it('release create -f runs the file\'s release; app apply is refused while it is active, unless unchanged', async () => {
    const created = await fleet.cli(['release', 'create', '-f', RELEASE_FILE]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    // When the release waits for the approval before batch 2
    await waitFor('the approval before batch 2', async () => (await fleet.adminClient.release(id)).release?.waitingFor.startsWith('approval'), 60_000);
    const refused = await fleet.cli(['app', 'apply', '-f', APP_FILE, '--stop-timeout', '3s']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(`fleetwave: app 'shop': release ${id} is still active; finish or cancel it before changing the app`);
    const unchanged = await fleet.cli(['app', 'apply', '-f', APP_FILE]);
    expect(unchanged.stdout.trim()).toBe('app shop unchanged');
    // Then, approved, it ends Released with the file's policy
    const approved = await fleet.cli(['release', 'approve', id, '--comment', 'from the file', '--watch']);
    expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    const detail = await fleet.adminClient.release(id);
    expect(detail.release?.spec).toMatchObject({ edition: '2.0', batches: 2, waitMs: 1000, drainMs: 2000, approvalBefore: [2], bestEffort: false });
  }, 120_000);

  it('app apply updates a changed app, with a change record naming what changed', async () => {
    const updated = await fleet.cli(['app', 'apply', '-f', APP_FILE, '--stop-timeout', '3s', '--env', 'START_DELAY_MS=60']);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout.trim()).toBe('app shop updated (running instances take it at their next release)');
    const [app] = await json(['app', 'list']);
    expect(app).toMatchObject({ stopTimeoutMs: 3000, env: { START_DELAY_MS: '60' } });
    const history = await json(['history', 'shop']);
    expect(history.find((c) => c.action === 'app-update')).toMatchObject({ result: 'updated: env, stopTimeoutMs' });
  }, 30_000);
});
