import { describe, expect, it } from 'vitest';
import { ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { renderChanges, renderSummary } from './progress.js';
import { renderReleaseDetail } from './show.js';

// Fixtures: shop 2.0 was Released to a1 (batch 1) and a2 (batch 2) a minute before bob rolls it back at
// T0 + 60 s; the rollback goes newest batch first: a2 in rollback batch 1, a1 in rollback batch 2.
const T0 = 1_700_000_000_000;
const ROLLBACK_AT = T0 + 60_000;

type Step = [name: string, status: string, start: number, end?: number, error?: string];
const steps = (list: Step[]) =>
  list.map(([step, status, start, end, error]) => ({ step, status, startedUnixMs: T0 + start, finishedUnixMs: end ? T0 + end : 0, error: error ?? '' }));

const forward = (offset: number): Step[] => [
  ['download', 'ok', 0, 50],
  ['quiesce', 'ok', offset, offset + 10],
  ['drain', 'ok', offset + 10, offset + 500],
  ['restart', 'ok', offset + 500, offset + 700],
  ['health', 'ok', offset + 700, offset + 900],
];
const back = (offset: number): Step[] => [
  ['quiesce', 'ok', offset, offset + 10],
  ['drain', 'ok', offset + 10, offset + 1000],
  ['restart', 'ok', offset + 1000, offset + 1500],
  ['health', 'ok', offset + 1500, offset + 2000],
];

interface InstanceFixture {
  status: string;
  step?: string;
  edition?: string;
  error?: string;
  steps: Step[];
}

function snapshot(status: string, current: number, a1: InstanceFixture, a2: InstanceFixture, fields: Record<string, unknown> = {}): ReleaseDetail {
  const rollingBack = status !== 'Released' && status !== 'Releasing';
  return ReleaseDetail.fromPartial({
    release: {
      id: 'r-1', app: 'shop', edition: '2.0', group: 'blue', status, batchCount: 2, createdUnixMs: T0,
      rollbackBatchCount: rollingBack ? 2 : 0, rollbackCurrentBatch: current, ...fields,
    },
    batches: [1, 2].map((number) => ({ number, group: 'blue', status: 'done', instances: [`a${number}`] })),
    instances: [
      { instance: 'a1', group: 'blue', batch: 1, rollbackBatch: rollingBack ? 2 : 0, moved: 'switched', edition: '2.0', ...a1, steps: steps(a1.steps) },
      { instance: 'a2', group: 'blue', batch: 2, rollbackBatch: rollingBack ? 1 : 0, moved: 'switched', edition: '2.0', ...a2, steps: steps(a2.steps) },
    ],
    changes: [
      { atUnixMs: T0, actor: 'alice', action: 'create', result: 'created' },
      ...(rollingBack ? [{ atUnixMs: ROLLBACK_AT, actor: 'bob', action: 'rollback', result: 'rolling back 2 instance(s) in 2 batch(es)' }] : []),
    ],
  });
}

const released: InstanceFixture[] = [{ status: 'released', steps: forward(100) }, { status: 'released', steps: forward(1000) }];
const before = snapshot('Released', 0, released[0]!, released[1]!, { finishedUnixMs: T0 + 2000 });
/** a2 quiesces in rollback batch 1. */
const batch1 = (a2Status: string) =>
  snapshot('Rolling back', 1, released[0]!, { status: a2Status, steps: [...forward(1000), ['quiesce', 'running', 60_000]] }, { message: 'rollback requested by bob' });
const a2Back: InstanceFixture = { status: 'rolled back', edition: '1.0', steps: [...forward(1000), ...back(60_000)] };
/** a2 is back on 1.0; a1 quiesces in rollback batch 2. */
const batch2 = snapshot('Rolling back', 2, { status: 'released', steps: [...forward(100), ['quiesce', 'running', 62_000]] }, a2Back, { message: 'rollback requested by bob' });
const done = snapshot(
  'Rolled back',
  2,
  { status: 'rolled back', edition: '1.0', steps: [...forward(100), ...back(62_000)] },
  a2Back,
  { message: '2 instance(s) back on their previous edition', finishedUnixMs: T0 + 64_000 },
);

describe('renderChanges of a rollback', () => {
  it('starts with the rollback, not a replay of the forward release', () => {
    const lines = renderChanges(undefined, batch1('released'));
    expect(lines).toEqual([
      'release r-1: rolling shop 2.0 back on 2 instances in 2 rollback batches: Rolling back',
      'rollback batch 1/2 started: a2',
      '  a2  quiesce …',
    ]);
    expect(lines.join('\n')).not.toContain('2.0 (');
  });

  it('reads the same whether the instance still says released or rolling back', () => {
    expect(renderChanges(undefined, batch1('rolling back'))).toEqual(renderChanges(undefined, batch1('released')));
  });

  it("chains the rollback's own steps, going to the old edition", () => {
    expect(renderChanges(batch1('released'), batch2)).toEqual([
      '  a2  quiesce → drain → restart → health ✓ back on 1.0 (2.00s)',
      'rollback batch 2/2 started: a1',
      '  a1  quiesce …',
    ]);
    expect(renderChanges(batch2, done)).toEqual([
      '  a1  quiesce → drain → restart → health ✓ back on 1.0 (2.00s)',
      'release Rolling back → Rolled back: 2 instance(s) back on their previous edition',
    ]);
  });

  it('seen from a watch of the forward release: the status change, then only rollback lines', () => {
    expect(renderChanges(before, batch1('released'))).toEqual([
      'release Released → Rolling back: rollback requested by bob',
      'rollback batch 1/2 started: a2',
      '  a2  quiesce …',
    ]);
  });

  it('does not report the forward batches the rollback stopped as failed', () => {
    const releasing = snapshot('Releasing', 0, released[0]!, { status: 'pending', steps: [['download', 'ok', 0, 50]] });
    releasing.batches[1]!.status = 'pending';
    const rolling = snapshot('Rolling back', 1, { status: 'released', steps: [...forward(100), ['quiesce', 'running', 60_000]] }, { status: 'pending', steps: [['download', 'ok', 0, 50]] });
    rolling.batches[1]!.status = 'failed';
    rolling.instances[1]!.rollbackBatch = 0;
    rolling.instances[0]!.rollbackBatch = 1;
    rolling.release!.rollbackBatchCount = 1;
    const lines = renderChanges(releasing, rolling);
    expect(lines).toEqual(['release Releasing → Rolling back', 'rollback batch 1/1 started: a1', '  a1  quiesce …']);
  });

  it('says what failed once, without the prefixes the error collected', () => {
    const failed = snapshot(
      'Rollback failed',
      2,
      {
        status: 'failed',
        step: 'restart',
        error: 'rollback failed: restart: restart: no such edition',
        steps: [...forward(100), ['quiesce', 'ok', 62_000, 62_010], ['drain', 'ok', 62_010, 62_500], ['restart', 'failed', 62_500, 62_600, 'restart: restart: no such edition']],
      },
      a2Back,
      { message: 'rollback failed on 1 instance(s): a1: rollback failed: restart: restart: no such edition', finishedUnixMs: T0 + 62_600 },
    );
    expect(renderChanges(batch2, failed)).toEqual([
      '  a1  quiesce → drain → restart ✗ no such edition',
      'release Rolling back → Rollback failed: rollback failed on 1 instance(s): a1: rollback failed: restart: restart: no such edition',
    ]);
    expect(renderSummary(failed).slice(1)).toEqual([
      '  a1: failed at restart: no such edition',
      'next: fleetwave release rollback r-1  (tries the instances that did not go back again)',
    ]);
  });
});

describe('renderSummary of a rollback', () => {
  it('counts the time from the start of the rollback, not from the creation of the release', () => {
    expect(renderSummary(done)).toEqual(['release r-1 Rolled back in 4.00s: 2 rolled back (2 instance(s) back on their previous edition)']);
  });

  it('release show gives the rollback its own start and time', () => {
    expect(renderReleaseDetail(done)).toMatch(/^Rollback  batch 2\/2 \(newest release batch first\), began \d\d:\d\d:\d\d \(took 4\.00s\)$/m);
  });
});
