import { describe, expect, it } from 'vitest';
import type { Batch, InstanceProgress } from '../proto/gen/fleetwave/v1/admin.js';
import { T0, batch, detail as releaseDetail, instance, step } from '../test/harness/release-fixtures.js';
import { isFinal, renderChanges, renderSummary } from './progress.js';

// Fixture factories: a release of shop 2.0 to two agents in two batches.
const detail = (status: string, batches: Batch[], instances: InstanceProgress[], fields: Record<string, unknown> = {}) =>
  releaseDetail(status, batches, instances, { batchCount: 2, ...fields });

describe('renderChanges', () => {
  it('introduces the release on the first snapshot and skips the pending plan', () => {
    const first = detail('Releasing', [batch(1, 'pending', ['agent-1']), batch(2, 'pending', ['agent-2'])], [instance('agent-1', 1), instance('agent-2', 2)]);
    expect(renderChanges(undefined, first)).toEqual(['release r-1: shop 2.0 to all in 2 batches: Releasing']);
  });

  it('reports a finished download once, not while it runs', () => {
    const running = detail('Releasing', [], [instance('agent-1', 1, { status: 'in progress', step: 'download', steps: [step('download', 'running', 0)] })]);
    const done = detail('Releasing', [], [instance('agent-1', 1, { status: 'in progress', step: 'download', steps: [step('download', 'ok', 0, 120)] })]);
    expect(renderChanges(undefined, running)).toEqual(['release r-1: shop 2.0 to all in 2 batches: Releasing']);
    expect(renderChanges(running, done)).toEqual(['  agent-1  download ✓ (120ms)']);
  });

  it('prints a batch start, each step change, and the released instance with its edition and time', () => {
    const downloaded = [step('download', 'ok', 0, 100)];
    const before = detail('Releasing', [batch(1, 'pending', ['agent-1'])], [instance('agent-1', 1, { status: 'in progress', steps: downloaded })]);
    const quiescing = detail(
      'Releasing',
      [batch(1, 'running', ['agent-1'], { startedUnixMs: T0 + 200 })],
      [instance('agent-1', 1, { status: 'in progress', step: 'quiesce', steps: [...downloaded, step('quiesce', 'running', 200)] })],
    );
    const draining = detail(
      'Releasing',
      [batch(1, 'running', ['agent-1'], { startedUnixMs: T0 + 200 })],
      [instance('agent-1', 1, { status: 'in progress', step: 'drain', steps: [...downloaded, step('quiesce', 'ok', 200, 210), step('drain', 'running', 210)] })],
    );
    const released = detail(
      'Releasing',
      [batch(1, 'done', ['agent-1'], { startedUnixMs: T0 + 200, finishedUnixMs: T0 + 1430 })],
      [
        instance('agent-1', 1, {
          status: 'released',
          edition: '2.0',
          steps: [...downloaded, step('quiesce', 'ok', 200, 210), step('drain', 'ok', 210, 700), step('restart', 'ok', 700, 800), step('health', 'ok', 800, 1430)],
        }),
      ],
    );
    expect(renderChanges(before, quiescing)).toEqual(['batch 1/2 (blue) started: agent-1', '  agent-1  quiesce …']);
    expect(renderChanges(quiescing, draining)).toEqual(['  agent-1  quiesce → drain …']);
    expect(renderChanges(draining, released)).toEqual([
      '  agent-1  quiesce → drain → restart → health ✓ 2.0 (1.23s)',
      'batch 1/2 (blue) done in 1.23s',
    ]);
    // Nothing changed: nothing printed.
    expect(renderChanges(released, released)).toEqual([]);
  });

  it('shows a failed step with its error and the status change with its message', () => {
    const running = detail('Releasing', [batch(1, 'running', ['agent-1'])], [instance('agent-1', 1, { status: 'in progress', steps: [step('restart', 'running', 0)] })]);
    const failed = detail(
      'Release failed',
      [batch(1, 'failed', ['agent-1'])],
      [instance('agent-1', 1, { status: 'failed', step: 'health', steps: [step('restart', 'ok', 0, 10), step('health', 'failed', 10, 5000, { error: 'GET /healthz: 500' })] })],
      { message: 'first batch failed' },
    );
    expect(renderChanges(running, failed)).toEqual([
      '  agent-1  restart → health ✗ GET /healthz: 500',
      'batch 1/2 (blue) failed',
      'release Releasing → Release failed: first batch failed',
    ]);
  });

  it('says what the release waits for and how to unblock it', () => {
    const running = detail('Releasing', [], []);
    const waiting = detail('Releasing', [batch(2, 'waiting', ['agent-2'], { checkpoint: 'approval' })], [], { waitingFor: 'approval before batch 2' });
    expect(renderChanges(running, waiting)).toEqual([
      'waiting for approval before batch 2 (fleetwave release approve r-1)',
      'batch 2/2 (blue) waiting for approval',
    ]);
  });

  it('reads in order: what finished, the release, what began', () => {
    const before = detail('Releasing', [batch(1, 'running', ['a']), batch(2, 'pending', ['b'])], [
      instance('a', 1, { status: 'in progress', steps: [step('health', 'running', 0)] }),
      instance('b', 2, { status: 'in progress', steps: [step('download', 'ok', 0, 5)] }),
    ]);
    const after = detail('Releasing', [batch(1, 'done', ['a']), batch(2, 'running', ['b'])], [
      instance('a', 1, { status: 'released', edition: '2.0', steps: [step('health', 'ok', 0, 500)] }),
      instance('b', 2, { status: 'in progress', steps: [step('download', 'ok', 0, 5), step('quiesce', 'running', 600)] }),
    ], { waitingFor: '' });
    expect(renderChanges(before, after)).toEqual([
      '  a  health ✓ 2.0 (500ms)',
      'batch 1/2 (blue) done',
      'batch 2/2 (blue) started: b',
      '  b  quiesce …',
    ]);
  });

  it('aligns instance names and reports unreachable and reverted instances', () => {
    const before = detail('Releasing', [], [instance('a', 1, { status: 'in progress', steps: [step('drain', 'running', 0)] }), instance('agent-22', 1, { status: 'in progress', steps: [] })]);
    const after = detail('Releasing', [], [
      instance('a', 1, { status: 'unreachable', step: 'drain', steps: [step('drain', 'running', 0)] }),
      instance('agent-22', 1, { status: 'rolled back', edition: '1.0', steps: [] }),
    ]);
    expect(renderChanges(before, after)).toEqual(['  a         unreachable during drain', '  agent-22  rolled back to 1.0']);
  });

  it('names a failed step once, whatever prefixes its error collected on the way up', () => {
    const running = detail('Releasing', [], [instance('a', 2, { status: 'in progress', steps: [step('restart', 'running', 0)] })]);
    const failed = detail('Releasing', [], [
      instance('a', 2, { status: 'failed', step: 'restart', error: 'restart: restart: exited with code 1', steps: [step('restart', 'failed', 0, 90, { error: 'restart: restart: exited with code 1' })] }),
    ]);
    expect(renderChanges(running, failed)).toEqual(['  a  restart ✗ exited with code 1']);
  });
});

describe('renderSummary', () => {
  it('counts instances and says how long the release took', () => {
    const done = detail('Released', [], [instance('agent-1', 1, { status: 'released' }), instance('agent-2', 2, { status: 'released' })], { finishedUnixMs: T0 + 12_300 });
    expect(renderSummary(done)).toEqual(['release r-1 Released in 12.3s: 2 released']);
    expect(isFinal(done)).toBe(true);
  });

  it('lists failed instances and the next commands, rollback only when something moved', () => {
    const failed = detail('Release failed', [], [
      instance('agent-1', 1, { status: 'released', edition: '2.0', moved: 'switched' }),
      instance('agent-2', 2, { status: 'failed', step: 'health', error: 'unhealthy after 3 tries', moved: 'switched' }),
    ]);
    expect(renderSummary(failed)).toEqual([
      'release r-1 Release failed: 1 released, 1 failed',
      '  agent-2: failed at health: unhealthy after 3 tries',
      'next: fleetwave release retry r-1  or  fleetwave release rollback r-1',
    ]);
    expect(isFinal(detail('Suspended', [], []))).toBe(false);
  });

  it('does not suggest a rollback after a first-batch failure: nothing moved', () => {
    const failed = detail('Release failed', [], [
      instance('agent-1', 1, { status: 'failed', step: 'health', error: 'health: unhealthy; back on 1.0' }),
      instance('agent-2', 2, { status: 'pending' }),
    ]);
    const lines = renderSummary(failed);
    expect(lines.at(-1)).toBe('next: fleetwave release retry r-1  (nothing to roll back: no instance left its previous edition)');
    expect(lines.join('\n')).not.toContain('release rollback');
  });
});
