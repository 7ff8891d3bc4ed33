// The console's pure parts: which actions a role sees in which status, status tones, durations, group counts, and the
// refetch scheduler's bound (one refetch per window and none overlapping, whatever the event rate).
import { describe, expect, it } from 'vitest';
import { actionsFor } from './actions.js';
import { countsByGroup, formatDuration, toneOf } from './format.js';
import { badEventTypes } from '../../common/event-types.js';
import { RefreshScheduler, eventsUrl, type Clock } from './live.js';
import { isEditionChange, isFleetChange, isReleaseChange, streamFor } from './streams.js';

describe('actionsFor', () => {
  const waiting = (checkpoint: string) => [{ number: 1, status: 'done' }, { number: 2, status: 'waiting', checkpoint }];
  it.each([
    ['viewer', 'Releasing', waiting('approval'), []],
    ['operator', 'Releasing', waiting('approval'), ['approve', 'reject', 'pause', 'rollback', 'cancel']],
    ['admin', 'Releasing', waiting('trigger'), ['trigger', 'pause', 'rollback', 'cancel']],
    ['operator', 'Suspended', waiting('continue'), ['continue', 'resume', 'rollback', 'cancel']],
    ['operator', 'To release', [], ['start', 'cancel']],
    ['operator', 'Released', [], ['rollback']],
    ['operator', 'Release failed', [], ['retry', 'rollback']],
    ['operator', 'Rolled back', [], []],
    ['metrics', 'Releasing', [], []],
  ])('%s on %s', (role, status, batches, expected) => {
    expect(actionsFor(role, { status }, batches)).toEqual(expected);
  });
  it('offers retry on a Released release only when an instance failed', () => {
    expect(actionsFor('operator', { status: 'Released' }, [], { counts: [{ status: 'failed', count: 1 }] })).toEqual(['retry', 'rollback']);
  });
});

describe('format', () => {
  it.each([
    [850, '850 ms'],
    [12_340, '12.3 s'],
    [245_000, '4 min 05 s'],
    [7_380_000, '2 h 03 min'],
    [-1, '–'],
  ])('formatDuration(%d) = %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
  it('gives every status a tone, unknown ones idle', () => {
    expect([toneOf('Released'), toneOf('in progress'), toneOf('Release failed'), toneOf('rolled back'), toneOf('waiting'), toneOf('?')]).toEqual(['ok', 'busy', 'bad', 'back', 'wait', 'idle']);
  });
  it('folds summary rows per group', () => {
    expect(countsByGroup([{ group: 'blue', status: 'running', count: 2 }, { group: 'blue', status: 'failed', count: 1 }, { group: 'green', status: 'running', count: 3 }])).toEqual([
      { group: 'blue', total: 3, byStatus: [['running', 2], ['failed', 1]] },
      { group: 'green', total: 3, byStatus: [['running', 3]] },
    ]);
  });
});

describe('RefreshScheduler', () => {
  /** Timers run by hand: `tick()` fires the pending ones. */
  function fakeClock() {
    const pending = new Map<number, () => void>();
    let next = 0;
    const clock: Clock = {
      setTimeout: (fn) => (pending.set(++next, fn), next),
      clearTimeout: (h) => void pending.delete(h as number),
    };
    const tick = () => {
      const fns = [...pending.values()];
      pending.clear();
      for (const fn of fns) fn();
    };
    return { clock, tick, pending };
  }

  it('turns 10,000 events in one window into one refetch, and events during a refetch into one more', async () => {
    const { clock, tick, pending } = fakeClock();
    let calls = 0;
    let release!: () => void;
    const s = new RefreshScheduler(() => (calls++, new Promise<void>((r) => (release = r))), 300, clock);
    for (let n = 0; n < 10_000; n++) s.poke();
    expect(pending.size).toBe(1);
    tick();
    expect(calls).toBe(1);
    // Events while the refetch runs arm no timer (no overlap) ...
    for (let n = 0; n < 5_000; n++) s.poke();
    expect(pending.size).toBe(0);
    release();
    await new Promise((r) => setTimeout(r, 0));
    // ... but one refetch after it.
    expect(pending.size).toBe(1);
    tick();
    expect(calls).toBe(2);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(pending.size).toBe(0);
    s.stop();
    s.poke();
    expect(pending.size).toBe(0);
  });
});

describe('the stream of each view', () => {
  it('asks the server for its own events only, never drain progress, and instance steps only on a release page', () => {
    const fleet = streamFor(['fleet']);
    expect(fleet.types).toContain('io.fleetwave.instance.started');
    expect(fleet.types).not.toContain('io.fleetwave.instance.drain.progress');
    expect(fleet.types).not.toContain('io.fleetwave.release.instance.step');
    expect(streamFor(['releases']).types).not.toContain('io.fleetwave.release.instance.step');
    expect(streamFor(['releases', 'r-1'])).toEqual({ types: [], app: '', release: 'r-1' });
    expect(streamFor(['editions', 'shop'])).toMatchObject({ app: 'shop' });
    expect(eventsUrl(streamFor(['releases', 'r-1']))).toBe('/events?release=r-1');
    for (const parts of [['fleet'], ['releases'], ['editions', 'shop']]) expect(badEventTypes(streamFor(parts).types)).toBeNull();
  });

  it('refetches a view only for what its stream is for', () => {
    expect(isFleetChange({ type: 'io.fleetwave.instance.healthy', app: 'shop' })).toBe(true);
    expect(isFleetChange({ type: 'io.fleetwave.instance.drain.progress', app: 'shop' })).toBe(false);
    expect(isReleaseChange({ type: 'io.fleetwave.release.batch.finished' })).toBe(true);
    expect(isReleaseChange({ type: 'io.fleetwave.release.instance.step' })).toBe(false);
    expect(isEditionChange({ type: 'io.fleetwave.release.switched', app: 'shop' }, 'shop')).toBe(true);
    expect(isEditionChange({ type: 'io.fleetwave.release.switched', app: 'cart' }, 'shop')).toBe(false);
  });
});
