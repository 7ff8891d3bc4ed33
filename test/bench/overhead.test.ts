// The overhead arithmetic of the rollout benchmark: union of agent-side steps, per batch.
import { describe, expect, it } from 'vitest';
import type { ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';
import { releaseOverhead, unionLength } from './overhead.js';

const step = (name: string, startedUnixMs: number, finishedUnixMs: number) => ({ step: name, status: 'ok', startedUnixMs, finishedUnixMs, error: '' });

describe('unionLength', () => {
  it.each([
    [[], 0],
    [[[0, 10]], 10],
    [[[0, 10], [5, 15]], 15],
    [[[0, 10], [20, 25]], 15],
    [[[20, 25], [0, 10], [9, 21]], 25],
    [[[5, 5]], 0],
  ] as [[number, number][], number][])('%j covers %d ms', (intervals, length) => {
    expect(unionLength(intervals)).toBe(length);
  });
});

describe('releaseOverhead', () => {
  it('subtracts the agent-side steps of parallel instances once and divides by the batches', () => {
    const detail = {
      release: { createdUnixMs: 1000, finishedUnixMs: 2000 },
      batches: [{}, {}],
      instances: [
        // batch 1: quiesce (controller's) then drain, restart, health; the other instance overlaps it
        { steps: [step('download', 1000, 1100), step('quiesce', 1110, 1115), step('drain', 1115, 1200), step('restart', 1205, 1500), step('health', 1500, 1550)] },
        { steps: [step('download', 1000, 1090), step('quiesce', 1110, 1112), step('drain', 1112, 1190), step('restart', 1200, 1520), step('health', 1520, 1560)] },
        // batch 2
        { steps: [step('quiesce', 1580, 1590), step('drain', 1590, 1600), step('restart', 1600, 1900), step('health', 1900, 1980)] },
      ],
    } as unknown as ReleaseDetail;
    const o = releaseOverhead(detail);
    // agent-side union: 1000-1100, 1112-1200, 1200-1560, 1590-1980 = 100 + 88 + 360 + 390
    expect(o).toEqual({ wallMs: 1000, agentMs: 938, overheadMs: 62, batches: 2, perBatchMs: 31 });
  });

  it('counts the drain intervals of `drained` events as agent time', () => {
    const detail = {
      release: { createdUnixMs: 0, finishedUnixMs: 100 },
      batches: [{}],
      instances: [{ steps: [step('quiesce', 0, 30), step('drain', 30, 30), step('restart', 30, 90)] }],
    } as unknown as ReleaseDetail;
    expect(releaseOverhead(detail).overheadMs).toBe(40);
    expect(releaseOverhead(detail, [[5, 25]]).overheadMs).toBe(20);
  });

  it('refuses a release that has not finished', () => {
    expect(() => releaseOverhead({ release: { createdUnixMs: 1, finishedUnixMs: 0 }, batches: [], instances: [] } as unknown as ReleaseDetail)).toThrow(/not finished/);
  });
});
