// The release spec through the CLI against real agents: targets and groups, rolling and grouped batches,
// deploy and upgrade, pre-staged downloads, manual batches and checkpoints, hard reset, drains,
// max-unavailable across groups and step deadlines when an agent goes away.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, ModelFleet, START_TIMEOUT_MS, stepRows } from './setup.js';

const APPS = ['roll', 'grp', 'gate', 'hard', 'drain', 'cap', 'gone'];

describe('the release spec', () => {
  let mf: ModelFleet;

  beforeAll(async () => {
    // Given four agents (blue: b1 b2, green: g1 g2), each serving every app, with a local reset hook
    mf = await ModelFleet.start('model-spec', APPS, (dir, id) => ['--reset-hook', `echo "$FLEETWAVE_APP $FLEETWAVE_EDITION" >> ${join(dir, `hook-${id}.log`)}`]);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await mf?.stop();
  });

  it('deploys to instances that run nothing, then upgrades group after group with downloads pre-staged', async () => {
    await mf.createApp('roll', ['1.0', '2.0']);
    // When 1.0 is deployed everywhere (a release too: start and health, no quiesce)
    const deploy = await mf.deploy('roll', '1.0');
    const deployed = await mf.admin.release(deploy);
    expect(deployed.instances.map((i) => i.steps.map((s) => s.step).join(','))).toEqual(Array(4).fill('download,start,health'));
    expect(await mf.serving('g2', 'roll')).toBe('1.0');

    // And 2.0 is rolled out in 2 batches per group, automatically, 300 ms apart
    const id = await mf.create('roll', '2.0', ['--group', 'all', '--batches', '2', '--batch-mode', 'auto', '--wait', '300ms']);
    const detail = await mf.expectStatus(id, 'Released');

    // Then groups go one after the other, one instance per batch, each batch the wait after the one before
    expect(detail.batches.map((b) => `${b.group}:${b.instances.join('+')}`)).toEqual(['blue:b1', 'blue:b2', 'green:g1', 'green:g2']);
    for (let n = 1; n < detail.batches.length; n++) {
      expect(Number(detail.batches[n]!.startedUnixMs)).toBeGreaterThanOrEqual(Number(detail.batches[n - 1]!.finishedUnixMs) + 300);
    }
    // Downloads started at once, and each batch's downloads ended before its first instance was quiesced
    const rows = stepRows(detail);
    const downloads = rows.filter((r) => r.step === 'download');
    expect(Math.max(...downloads.map((r) => r.start))).toBeLessThanOrEqual(Math.min(...rows.filter((r) => r.step === 'quiesce').map((r) => r.start)));
    for (const batch of detail.batches) {
      const of = (step: string) => rows.filter((r) => r.step === step && batch.instances.includes(r.instance));
      expect(Math.max(...of('download').map((r) => r.end))).toBeLessThanOrEqual(Math.min(...of('quiesce').map((r) => r.start)));
    }
    expect(detail.instances.map((i) => `${i.instance}:${i.status}:${i.edition}`)).toEqual(['b1:released:2.0', 'b2:released:2.0', 'g1:released:2.0', 'g2:released:2.0']);
    expect(await mf.serving('b1', 'roll')).toBe('2.0');
  });

  it('targets one group with the grouped strategy and refuses a group size above the group', async () => {
    await mf.createApp('grp', ['1.0']);
    expectOneLineError(await mf.cli(['release', 'create', 'grp', '--edition', '1.0', '--group', 'blue', '--strategy', 'grouped', '--group-size', '3']), /group size 3 but group 'blue' has only 2/);
    const id = await mf.create('grp', '1.0', ['--group', 'blue', '--strategy', 'grouped', '--group-size', '1']);
    const detail = await mf.expectStatus(id, 'Released');
    expect(detail.batches.map((b) => b.instances)).toEqual([['b1'], ['b2']]);
    expect(await mf.editions('grp')).toEqual({ b1: '1.0', b2: '1.0', g1: '', g2: '' });
  });

  it('holds batches at approval, trigger and manual-continue checkpoints and shows who passed them', async () => {
    await mf.createApp('gate', ['1.0', '2.0']);
    await mf.deploy('gate', '1.0');
    const id = await mf.create('gate', '2.0', ['--batches', '2', '--batch-mode', 'manual', '--approval-before', '2', '--trigger-before', '3']);

    await mf.waitingFor(id, 'approval before batch 2');
    expectOneLineError(await mf.cli(['release', 'trigger', id]), /waits for approval before batch 2, not trigger/);
    expect(await mf.ok(['release', 'approve', id, '--comment', 'error rate flat'])).toMatch(/Releasing/);
    await mf.waitingFor(id, 'trigger before batch 3');
    await mf.ok(['release', 'trigger', id, '--comment', 'green window open']);
    await mf.waitingFor(id, 'continue before batch 4');
    expect(await mf.editions('gate')).toEqual({ b1: '2.0', b2: '2.0', g1: '2.0', g2: '1.0' });
    await mf.ok(['release', 'continue', id]);
    await mf.expectStatus(id, 'Released');

    // The timeline: batches, per-instance steps with times, checkpoints with who and why
    const show = await mf.ok(['release', 'show', id]);
    expect(show).toMatch(/approval by \S+: error rate flat/);
    expect(show).toMatch(/trigger by \S+: green window open/);
    expect(show).toMatch(/continue by \S+/);
    expect(show).toMatch(/g2 \(green, batch 4\): released, step health, edition 2\.0/);
    expect(show).toMatch(/ {4}quiesce +ok +\d\d:\d\d:\d\d → \d\d:\d\d:\d\d/);
    expectOneLineError(await mf.cli(['release', 'approve', id]), /is not waiting for an approval/);
  });

  it('a hard reset runs HardResetServer and the host reset hook', async () => {
    await mf.createApp('hard', ['1.0', '2.0']);
    await mf.deploy('hard', '1.0', 'blue');
    const id = await mf.create('hard', '2.0', ['--group', 'blue', '--batches', '1', '--reset', 'hard']);
    const detail = await mf.expectStatus(id, 'Released');
    expect(detail.instances.map((i) => i.steps.map((s) => s.step).join(','))).toEqual(Array(2).fill('download,quiesce,drain,hard-reset,health'));
    for (const agent of ['b1', 'b2']) expect(readFileSync(join(mf.dir, `hook-${agent}.log`), 'utf8')).toContain('hard 2.0');
    expect(existsSync(join(mf.dir, 'hook-g1.log'))).toBe(false);
    expect(await mf.serving('b2', 'hard')).toBe('2.0');
  });

  it('a drain ends when nothing is in flight; --full-drain waits the whole interval', async () => {
    await mf.createApp('drain', ['1.0', '2.0', '3.0']);
    await mf.deploy('drain', '1.0', 'green');
    const early = await mf.expectStatus(await mf.create('drain', '2.0', ['--group', 'green', '--batches', '1', '--drain', '30s']), 'Released');
    for (const row of stepRows(early).filter((r) => r.step === 'drain')) expect(row.end - row.start).toBeLessThan(30_000);
    const full = await mf.expectStatus(await mf.create('drain', '3.0', ['--group', 'green', '--batches', '1', '--drain', '1500ms', '--full-drain']), 'Released');
    for (const row of stepRows(full).filter((r) => r.step === 'drain')) expect(row.end - row.start).toBeGreaterThanOrEqual(1500);
  });

  it('--max-unavailable keeps one instance of the app out of service at a time, across groups and releases', async () => {
    await mf.createApp('cap', ['1.0', '2.0']);
    await mf.deploy('cap', '1.0');
    // Two releases at once, one per group, each a single batch of two
    const blue = await mf.create('cap', '2.0', ['--group', 'blue', '--batches', '1', '--max-unavailable', '1']);
    const green = await mf.create('cap', '2.0', ['--group', 'green', '--batches', '1', '--max-unavailable', '1']);
    const details = [await mf.expectStatus(blue, 'Released'), await mf.expectStatus(green, 'Released')];
    // Out of service: from quiesce start to the end of the health check
    const windows = details.flatMap(stepRows).reduce<Record<string, { from: number; to: number }>>((acc, r) => {
      if (r.step === 'download') return acc;
      const w = acc[r.instance] ?? { from: Infinity, to: 0 };
      acc[r.instance] = { from: Math.min(w.from, r.start), to: Math.max(w.to, r.end) };
      return acc;
    }, {});
    const sorted = Object.values(windows).sort((a, b) => a.from - b.from);
    expect(sorted).toHaveLength(4);
    for (let n = 1; n < sorted.length; n++) expect(sorted[n]!.from).toBeGreaterThanOrEqual(sorted[n - 1]!.to);
  });

  it('never waits forever on an instance whose agent went away', async () => {
    await mf.createApp('gone', ['1.0', '2.0']);
    await mf.deploy('gone', '1.0', 'green');
    await mf.fleet.agents.find((a) => a.id === 'g2')!.kill();
    const id = await mf.create('gone', '2.0', ['--group', 'green', '--batches', '1', '--download-timeout', '1500ms']);
    const detail = await mf.expectStatus(id, 'Release failed');
    expect(detail.instances.find((i) => i.instance === 'g2')).toMatchObject({ status: 'unreachable', error: 'download timed out (agent unreachable)' });
    // The first batch failed, so nothing moved: g1 still serves 1.0
    expect(await mf.serving('g1', 'gone')).toBe('1.0');
    await mf.startAgent('g2');
    await mf.admin.waitForAgents(['g2'], 60_000);
  });
});
