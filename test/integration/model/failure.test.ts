// Failures and back-out through the CLI against real agents: first-batch revert, best effort, retry,
// auto-rollback, rollback from the kept editions, back-out, and editions kept side by side.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, ModelFleet, START_TIMEOUT_MS, stepRows } from './setup.js';

const APPS = ['first', 'later', 'effort', 'auto', 'back', 'stuck', 'out'];

describe('failures, rollback and back-out', () => {
  let mf: ModelFleet;

  beforeAll(async () => {
    mf = await ModelFleet.start('model-failure', APPS);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await mf?.stop();
  });

  it('a failure in the first batch fails the release and leaves the old edition active everywhere', async () => {
    await mf.createApp('first', ['1.0', 'bad'], ['bad']);
    await mf.deploy('first', '1.0');
    const id = await mf.create('first', 'bad', ['--batches', '2', '--health-timeout', '2s']);
    const detail = await mf.expectStatus(id, 'Release failed');
    expect(detail.release?.message).toMatch(/^batch 1 failed: b1: health/);
    expect(detail.instances.find((i) => i.instance === 'b1')?.error).toContain('back on 1.0');
    expect(await mf.editions('first')).toEqual({ b1: '1.0', b2: '1.0', g1: '1.0', g2: '1.0' });
    for (const agent of ['b1', 'b2', 'g1', 'g2']) expect(await mf.serving(agent, 'first')).toBe('1.0');
  });

  it('after the first batch, best effort off fails the release; retry re-runs the failed instances', async () => {
    await mf.createApp('later', ['1.0', '2.0']);
    await mf.deploy('later', '1.0');
    const id = await mf.create('later', '2.0', ['--batches', '2', '--approval-before', '3', '--health-timeout', '2s']);
    await mf.waitingFor(id, 'approval before batch 3');
    const broken = await mf.breakOn('g1', 'later', '2.0');
    await mf.ok(['release', 'approve', id]);
    const failed = await mf.expectStatus(id, 'Release failed');
    expect(failed.release?.message).toMatch(/^batch 3 failed: g1: health/);
    expect(failed.instances.map((i) => `${i.instance}:${i.status}`)).toEqual(['b1:released', 'b2:released', 'g1:failed', 'g2:pending']);
    expect((await mf.editions('later')).g2).toBe('1.0');

    // When the host is fixed and the operator retries
    rmSync(broken);
    expect(await mf.ok(['release', 'retry', id, '--comment', 'fixed g1'])).toMatch(/Releasing/);
    const retried = await mf.expectStatus(id, 'Released');
    expect(retried.instances.map((i) => i.status)).toEqual(Array(4).fill('released'));
    expect(await mf.editions('later')).toEqual({ b1: '2.0', b2: '2.0', g1: '2.0', g2: '2.0' });
  });

  it('with --best-effort on a later failure is reported and the others are released', async () => {
    await mf.createApp('effort', ['1.0', '2.0']);
    await mf.deploy('effort', '1.0');
    const id = await mf.create('effort', '2.0', ['--batches', '2', '--approval-before', '3', '--best-effort', 'on', '--health-timeout', '2s']);
    await mf.waitingFor(id, 'approval before batch 3');
    await mf.breakOn('g1', 'effort', '2.0');
    await mf.ok(['release', 'approve', id]);
    const detail = await mf.expectStatus(id, 'Released');
    expect(detail.release?.message).toMatch(/released with best effort; 1 instance\(s\) failed: g1: health/);
    expect(detail.instances.map((i) => `${i.instance}:${i.status}`)).toEqual(['b1:released', 'b2:released', 'g1:failed', 'g2:released']);
  });

  it('--auto-rollback rolls a failed release back to the previous edition', async () => {
    await mf.createApp('auto', ['1.0', '2.0']);
    await mf.deploy('auto', '1.0');
    const id = await mf.create('auto', '2.0', ['--batches', '2', '--approval-before', '3', '--auto-rollback', '--health-timeout', '2s']);
    await mf.waitingFor(id, 'approval before batch 3');
    await mf.breakOn('g1', 'auto', '2.0');
    await mf.ok(['release', 'approve', id]);
    const detail = await mf.expectStatus(id, 'Rolled back');
    expect(detail.instances.map((i) => `${i.instance}:${i.status}`)).toEqual(['b1:rolled back', 'b2:rolled back', 'g1:rolled back', 'g2:pending']);
    expect(await mf.editions('auto')).toEqual({ b1: '1.0', b2: '1.0', g1: '1.0', g2: '1.0' });
    const history = JSON.parse(await mf.ok(['history', 'auto', '--output', 'json'])) as Array<{ action: string; actor: string; comment: string }>;
    expect(history.find((c) => c.action === 'rollback')).toMatchObject({ actor: 'controller', comment: 'auto-rollback' });
  });

  it('rollback goes newest batch first, in the batches asked for, from the kept edition without a download', async () => {
    await mf.createApp('back', ['1.0', '2.0']);
    await mf.deploy('back', '1.0');
    const id = await mf.create('back', '2.0', ['--batches', '2', '--wait', '200ms']);
    await mf.expectStatus(id, 'Released');
    expectOneLineError(await mf.cli(['release', 'rollback', id, '--batches', '5']), /--batches 5 for a rollback of 4 instance/);

    await mf.ok(['release', 'rollback', id, '--batches', '2', '--comment', 'latency up']);
    const detail = await mf.expectStatus(id, 'Rolled back');
    expect(Object.fromEntries(detail.instances.map((i) => [i.instance, i.rollbackBatch]))).toEqual({ g1: 1, g2: 1, b1: 2, b2: 2 });
    expect(detail.release?.rollbackBatchCount).toBe(2);
    const rows = stepRows(detail);
    // One download per instance: the forward one; the rollback used the edition each agent kept.
    for (const agent of ['b1', 'b2', 'g1', 'g2']) expect(rows.filter((r) => r.instance === agent && r.step === 'download')).toHaveLength(1);
    const rollbackQuiesce = (agent: string) => rows.filter((r) => r.instance === agent && r.step === 'quiesce')[1]!.start;
    const greenBack = Math.max(...['g1', 'g2'].map((a) => rows.filter((r) => r.instance === a && r.step === 'health').at(-1)!.end));
    expect(rollbackQuiesce('b1')).toBeGreaterThanOrEqual(greenBack);
    expect(await mf.editions('back')).toEqual({ b1: '1.0', b2: '1.0', g1: '1.0', g2: '1.0' });
    expect(await mf.serving('g2', 'back')).toBe('1.0');
    expect(await mf.ok(['release', 'show', id])).toMatch(/Rollback +batch 2\/2/);
  });

  it('a rollback that cannot put an instance back ends Rollback failed; a second rollback finishes it', async () => {
    await mf.createApp('stuck', ['1.0', '2.0']);
    await mf.deploy('stuck', '1.0', 'green');
    const id = await mf.create('stuck', '2.0', ['--group', 'green', '--batches', '1', '--health-timeout', '2s']);
    await mf.expectStatus(id, 'Released');
    // g2's copy of the old edition now fails its health check
    const broken = await mf.breakOn('g2', 'stuck', '1.0');
    await mf.ok(['release', 'rollback', id]);
    const failed = await mf.expectStatus(id, 'Rollback failed');
    expect(failed.release?.message).toMatch(/^rollback failed on 1 instance\(s\): g2: rollback failed: health/);
    expect(failed.instances.map((i) => `${i.instance}:${i.status}`)).toEqual(['g1:rolled back', 'g2:failed']);
    rmSync(broken);
    await mf.ok(['release', 'rollback', id, '--comment', 'g2 fixed']);
    await mf.expectStatus(id, 'Rolled back');
    expect(await mf.editions('stuck')).toMatchObject({ g1: '1.0', g2: '1.0' });
  });

  it('back-out releases the previous edition with the same policy from the kept editions; editions stay side by side', async () => {
    await mf.createApp('out', ['1.0', '2.0']);
    expectOneLineError(await mf.cli(['rollback', 'out']), /no Released release/);
    await mf.deploy('out', '1.0');
    const upgrade = await mf.create('out', '2.0', ['--batches', '2', '--drain', '3s']);
    await mf.expectStatus(upgrade, 'Released');

    const id = (await mf.ok(['rollback', 'out', '--comment', 'checkout errors'])).trim();
    const detail = await mf.expectStatus(id, 'Released');
    expect(detail.release).toMatchObject({ edition: '1.0', group: 'all', batchCount: 4 });
    expect(detail.release?.spec?.drainMs).toBe(3000);
    const downloads = stepRows(detail).filter((r) => r.step === 'download');
    expect(downloads.map((r) => r.error)).toEqual(Array(4).fill('edition 1.0 kept on the host'));
    expect(await mf.editions('out')).toEqual({ b1: '1.0', b2: '1.0', g1: '1.0', g2: '1.0' });
    const history = JSON.parse(await mf.ok(['history', 'out', '--output', 'json'])) as Array<{ action: string; comment: string; result: string; releaseId: string }>;
    // The refused back-out above is recorded too; this is the one that ran.
    expect(history.find((c) => c.action === 'back-out' && c.releaseId === id)).toMatchObject({ releaseId: id, comment: 'checkout errors', result: expect.stringContaining(`backs out ${upgrade}: 2.0 → 1.0`) });

    // Both editions are still installed and on every host's disk
    const list = JSON.parse(await mf.ok(['edition', 'list', 'out', '--output', 'json'])) as Array<{ name: string }>;
    expect(list.map((e) => e.name)).toEqual(['1.0', '2.0']);
    const shown = JSON.parse(await mf.ok(['edition', 'show', 'out', '2.0', '--output', 'json'])) as {
      edition: { name: string };
      instances: Array<{ instance: string; active: boolean; kept: boolean }>;
    };
    expect(shown.edition.name).toBe('2.0');
    expect(shown.instances.map((i) => `${i.instance}:${i.active}:${i.kept}`)).toEqual(['b1:false:true', 'b2:false:true', 'g1:false:true', 'g2:false:true']);
    expect(await mf.ok(['edition', 'show', 'out', '1.0'])).toMatch(/Active on b1 b2 g1 g2/);
    expectOneLineError(await mf.cli(['edition', 'show', 'out', '9.9']), /edition '9\.9' of app 'out' does not exist/);
  });
});
