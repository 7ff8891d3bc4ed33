// Operator actions and their precedence through the CLI against real agents: pause and resume, cancel and
// rollback over a paused or waiting release, racing creates, change records, and bad input that changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../harness/fleet.js';
import { HeldRequest } from '../../harness/held-request.js';
import { expectOneLineError, ModelFleet, START_TIMEOUT_MS } from './setup.js';

const APPS = ['pause', 'cancel', 'reject', 'over', 'race', 'bad'];

describe('operator actions', () => {
  let mf: ModelFleet;

  beforeAll(async () => {
    mf = await ModelFleet.start('model-actions', APPS);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await mf?.stop();
  });

  it('pause is Suspending while an instance is mid-pipeline, then Suspended; resume finishes the release', async () => {
    await mf.createApp('pause', ['1.0', '2.0']);
    await mf.deploy('pause', '1.0', 'blue');
    // A request in flight on each instance holds its drain open (the drain interval is far longer) until the test
    // lets it go, so the first instance is mid-pipeline for as long as the pause takes to arrive.
    const held = ['b1', 'b2'].map((b) => new HeldRequest(mf.ports[b]!.pause!, mf.editionDir(b, 'pause', '1.0')));
    for (const h of held) await h.inFlight();
    const id = await mf.create('pause', '2.0', ['--group', 'blue', '--batches', '1', '--max-unavailable', '1', '--drain', '120s']);
    await waitFor('an instance to drain', async () => (await mf.admin.release(id)).instances.some((i) => i.step === 'drain'));
    expect(await mf.ok(['release', 'pause', id, '--comment', 'dinner'])).toMatch(/: Suspending/);
    expect((await mf.admin.release(id)).release?.status).toBe('Suspending');
    for (const h of held) h.release();
    const suspended = await mf.expectStatus(id, 'Suspended');
    for (const h of held) expect(await h.answer).toMatchObject({ status: 200, body: { edition: '1.0' } });
    expect(suspended.instances.map((i) => i.status).sort()).toEqual(['pending', 'released']);
    expectOneLineError(await mf.cli(['release', 'pause', id]), /is Suspended; cannot pause/);

    await mf.ok(['release', 'resume', id]);
    await mf.expectStatus(id, 'Released');
    expect(await mf.editions('pause')).toMatchObject({ b1: '2.0', b2: '2.0' });
    expectOneLineError(await mf.cli(['release', 'resume', id]), /is Released; cannot resume/);
  });

  it('cancel overrides a pause: the release fails, and continue or resume after it are refused', async () => {
    await mf.createApp('cancel', ['1.0', '2.0']);
    await mf.deploy('cancel', '1.0', 'green');
    const id = await mf.create('cancel', '2.0', ['--group', 'green', '--batches', '2', '--batch-mode', 'manual']);
    await mf.waitingFor(id, 'continue before batch 2');
    await mf.ok(['release', 'pause', id]);
    await mf.expectStatus(id, 'Suspended');
    await mf.ok(['release', 'cancel', id, '--comment', 'wrong window']);
    const detail = await mf.expectStatus(id, 'Release failed');
    expect(detail.release?.message).toMatch(/^cancelled by /);
    expectOneLineError(await mf.cli(['release', 'continue', id]), /is not waiting for a continue/);
    expectOneLineError(await mf.cli(['release', 'resume', id]), /cannot resume/);
    expect(await mf.editions('cancel')).toMatchObject({ g1: '2.0', g2: '1.0' });
  });

  it('reject stops the release, which fails and leaves the remaining instances on the old edition', async () => {
    await mf.createApp('reject', ['1.0', '2.0']);
    await mf.deploy('reject', '1.0', 'blue');
    const id = await mf.create('reject', '2.0', ['--group', 'blue', '--batches', '2', '--approval-before', '2']);
    await mf.waitingFor(id, 'approval before batch 2');
    await mf.ok(['release', 'reject', id, '--comment', 'error budget spent']);
    const detail = await mf.expectStatus(id, 'Release failed');
    expect(detail.release?.message).toMatch(/^batch 2 rejected by \S+: error budget spent$/);
    expect(detail.batches[1]).toMatchObject({ status: 'failed', checkpoint: 'approval', checkpointComment: 'error budget spent' });
    expect(await mf.editions('reject')).toMatchObject({ b1: '2.0', b2: '1.0' });
    expect(await mf.serving('b2', 'reject')).toBe('1.0');
  });

  it('rollback overrides a waiting approval; the approval after it is refused and every action is a change record', async () => {
    await mf.createApp('over', ['1.0', '2.0']);
    await mf.deploy('over', '1.0', 'blue');
    const id = await mf.create('over', '2.0', ['--group', 'blue', '--batches', '2', '--approval-before', '2']);
    await mf.waitingFor(id, 'approval before batch 2');
    await mf.ok(['release', 'rollback', id, '--comment', 'pager fired']);
    const detail = await mf.expectStatus(id, 'Rolled back');
    expect(detail.instances.map((i) => `${i.instance}:${i.status}`)).toEqual(['b1:rolled back', 'b2:pending']);
    expect(await mf.editions('over')).toMatchObject({ b1: '1.0', b2: '1.0' });
    expectOneLineError(await mf.cli(['release', 'approve', id, '--comment', 'too late']), /is not waiting for an approval/);

    // Change records: time, actor, action, comment, result, as JSON and as a table
    const history = JSON.parse(await mf.ok(['history', 'over', '--output', 'json'])) as Array<Record<string, string>>;
    const mine = history.filter((c) => c.releaseId === id);
    expect(mine.map((c) => c.action)).toEqual(['create', 'start', 'rollback', 'approve']);
    expect(mine.find((c) => c.action === 'rollback')).toMatchObject({ comment: 'pager fired', result: 'rolling back 1 instance(s) in 1 batch(es)' });
    expect(mine.find((c) => c.action === 'approve')).toMatchObject({ comment: 'too late', result: expect.stringMatching(/^refused: /) });
    for (const c of mine) expect(Number(c.atUnixMs)).toBeGreaterThan(0);
    expect(mine.every((c) => c.actor !== '')).toBe(true);
    const table = await mf.ok(['history', 'over']);
    expect(table).toMatch(/at +actor +action +release +comment +result/i);
    expect(table).toContain('pager fired');
  });

  it('two CLIs racing to release the same app and group: exactly one succeeds', async () => {
    await mf.createApp('race', ['1.0']);
    const args = ['release', 'create', 'race', '--edition', '1.0', '--group', 'green', '--no-start'];
    const results = await Promise.all([mf.cli(args), mf.cli(args)]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    const loser = results.find((r) => r.code !== 0)!;
    expectOneLineError(loser, /release r-\w+ of app 'race' is still active for group 'green'; finish or cancel it first/);
    // An overlapping group ("all") is refused too; another group is not.
    expectOneLineError(await mf.cli(['release', 'create', 'race', '--edition', '1.0', '--group', 'all', '--no-start']), /still active/);
    const blue = await mf.create('race', '1.0', ['--group', 'blue', '--no-start']);
    const listed = JSON.parse(await mf.ok(['release', 'list', 'race', '--output', 'json'])) as Array<{ status: string }>;
    expect(listed.map((r) => r.status)).toEqual(['To release', 'To release']);
    await mf.ok(['release', 'cancel', blue]);

    // The winner runs once started: a first deployment to green
    const winner = results.find((r) => r.code === 0)!.stdout.trim();
    expect(await mf.ok(['release', 'start', winner])).toMatch(/Releasing/);
    await mf.expectStatus(winner, 'Released');
    expect(await mf.editions('race')).toEqual({ b1: '', b2: '', g1: '1.0', g2: '1.0' });
  });

  it('bad input gives one clear line, a non-zero exit, and changes nothing', async () => {
    await mf.createApp('bad', ['1.0']);
    const before = await mf.ok(['history', 'bad', '--output', 'json']);
    const cases: Array<[string[], RegExp]> = [
      [['release', 'create', 'nope', '--edition', '1.0'], /app 'nope' does not exist/],
      [['release', 'create', 'bad', '--edition', '7.7'], /edition '7\.7' of app 'bad' does not exist/],
      [['release', 'create', 'bad', '--edition', '1.0', '--group', 'purple'], /group 'purple' has no instance/],
      [['release', 'create', 'bad', '--edition', '1.0', '--batches', '0'], /--batches: '0' is not a whole number/],
      [['release', 'create', 'bad', '--edition', '1.0', '--group', 'blue', '--batches', '3'], /3 batches for group 'blue' but it has only 2/],
      [['release', 'create', 'bad', '--edition', '1.0', '--drain', '-2s'], /--drain/],
      [['release', 'create', 'bad', '--edition', '1.0', '--wait', 'later'], /--wait/],
      [['release', 'create', 'bad', '--edition', '1.0', '--health-timeout', '5 parsecs'], /--health-timeout/],
      [['release', 'show', 'r-nope'], /release 'r-nope' does not exist/],
      [['release', 'approve', 'r-nope'], /release 'r-nope' does not exist/],
      [['rollback', 'nope'], /app 'nope' does not exist/],
    ];
    const results = await Promise.all(cases.map(([args]) => mf.cli(args)));
    results.forEach((result, n) => expectOneLineError(result, cases[n]![1]));
    expect(await mf.ok(['release', 'list', 'bad', '--output', 'json'])).toBe(before.replace(/.*/s, '[]\n'));
    // The refusals the controller saw are change records (the CLI's own refusals never reached it); nothing else changed.
    const after = JSON.parse(await mf.ok(['history', 'bad', '--output', 'json'])) as Array<{ action: string; releaseId: string; result: string }>;
    expect(after.slice(0, JSON.parse(before).length)).toEqual(JSON.parse(before));
    // The CLIs ran side by side: their refusals arrive in any order.
    expect(after.slice(JSON.parse(before).length).map((c) => [c.action, c.releaseId, c.result]).sort()).toEqual([
      ['create', '', "refused: 3 batches for group 'blue' but it has only 2 instance(s)"],
      ['create', '', "refused: edition '7.7' of app 'bad' does not exist"],
      ['create', '', "refused: group 'purple' has no instance of this app"],
    ]);

    // An action that does not fit the release's status is refused and leaves it as it was
    const id = await mf.create('bad', '1.0', ['--group', 'blue', '--no-start']);
    for (const [action, pattern] of [['approve', /is not waiting for an approval/], ['resume', /is To release; cannot resume/], ['retry', /nothing to retry/]] as const) {
      expectOneLineError(await mf.cli(['release', action, id]), pattern);
    }
    expect((await mf.admin.release(id)).release?.status).toBe('To release');
    await mf.ok(['release', 'cancel', id]);
  });
});
