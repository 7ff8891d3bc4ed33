import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReleaseDetail as ReleaseDetailFns, type Batch, type InstanceProgress } from '../proto/gen/fleetwave/v1/admin.js';
import { T0, batch, detail as releaseDetail, instance, step } from '../test/harness/release-fixtures.js';
import { frame } from './progress-frame.js';

// Fixture factories: shop 2.0 released to blue and green (release r-7), clock at T0 + offsets.
const detail = (status: string, batches: Batch[], instances: InstanceProgress[], fields: Record<string, unknown> = {}) =>
  releaseDetail(status, batches, instances, { id: 'r-7', ...fields });

const released = (id: string, b: number) =>
  instance(id, b, { status: 'released', edition: '2.0', steps: [step('download', 'ok', 0, 100), step('quiesce', 'ok', 1000, 1100), step('health', 'ok', 1100, 5100)] });

describe('frame', () => {
  it('draws a bar per batch and a line per instance of the running batch with its step and time', () => {
    const d = detail(
      'Releasing',
      [
        batch(1, 'done', ['agent-1', 'agent-2'], { startedUnixMs: T0 + 1000, finishedUnixMs: T0 + 13_300 }),
        batch(2, 'running', ['agent-3', 'agent-4'], { startedUnixMs: T0 + 14_000 }),
        batch(3, 'pending', ['agent-5', 'agent-6'], { group: 'green', checkpoint: 'approval' }),
      ],
      [
        released('agent-1', 1),
        released('agent-2', 1),
        released('agent-3', 2),
        instance('agent-4', 2, { status: 'in progress', step: 'drain', steps: [step('download', 'ok', 0, 100), step('quiesce', 'ok', 14_000, 14_010), step('drain', 'running', 58_480)] }),
        instance('agent-5', 3),
        instance('agent-6', 3),
      ],
    );
    expect(frame(d, T0 + 60_000, 80).split('\n')).toEqual([
      'release r-7: shop 2.0 to all · Releasing · 1m',
      'batch 1/3 (blue)   ██████████████████████████████  2/2 done in 12.3s',
      'batch 2/3 (blue)   ███████████████░░░░░░░░░░░░░░░  1/2 running',
      'batch 3/3 (green)  ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░  0/2 pending · approval',
      '  agent-4  drain …  1.52s',
      '  agent-3  ✓ 2.0  5.10s',
    ]);
  });

  it('shows a failure in the bar, the failed step with its error, and what the release waits for', () => {
    const d = detail(
      'Releasing',
      [batch(1, 'running', ['a', 'b', 'c', 'd'])],
      [
        instance('a', 1, { status: 'failed', step: 'health', error: 'health: unhealthy after 3 tries', steps: [step('health', 'failed', 0, 900)] }),
        released('b', 1),
        instance('c', 1, { status: 'unreachable', step: 'restart' }),
        instance('d', 1),
      ],
      { waitingFor: 'approval before batch 2' },
    );
    expect(frame(d, T0 + 10_000, 80).split('\n')).toEqual([
      'release r-7: shop 2.0 to all · Releasing · 10.0s',
      `batch 1/1 (blue)  ${'█'.repeat(8)}${'▒'.repeat(15)}${'░'.repeat(7)}  1/4 running · 2 failed`,
      '  a  health ✗ unhealthy after 3 tries',
      '  c  unreachable during restart',
      '  d  pending',
      '  b  ✓ 2.0  5.10s',
      'waiting for approval before batch 2 (fleetwave release approve r-7)',
    ]);
  });

  it('cuts lines to a narrow terminal instead of wrapping them', () => {
    const d = detail('Releasing', [batch(1, 'waiting', ['a'], { checkpoint: 'approval' })], [], { waitingFor: 'approval before batch 1' });
    expect(frame(d, T0 + 10_000, 40).split('\n')).toEqual([
      'release r-7: shop 2.0 to all · Releasin…',
      'batch 1/1 (blue)  ░░░░░░░░░░  0/1 waiti…',
      'waiting for approval before batch 1 (fl…',
    ]);
  });

  it('stops the clock when the release has finished', () => {
    const d = detail('Released', [batch(1, 'done', ['a'])], [released('a', 1)], { finishedUnixMs: T0 + 6000 });
    expect(frame(d, T0 + 99_000, 80).split('\n')[0]).toBe('release r-7: shop 2.0 to all · Released · 6.00s');
  });

  it('caps the instance lines at 10,000 instances, moving steps first', () => {
    const ids = Array.from({ length: 10_000 }, (_, n) => `host-${n}`);
    const instances = ids.map((id, n) => (n === 9_999 ? instance(id, 1, { status: 'in progress', steps: [step('restart', 'running', 0)] }) : instance(id, 1)));
    const lines = frame(detail('Releasing', [batch(1, 'running', ids)], instances), T0 + 2000, 80, { maxInstances: 5 }).split('\n');
    expect(lines).toHaveLength(1 + 1 + 5 + 1);
    expect(lines[2]).toBe('  host-9999  restart …  2.00s');
    expect(lines.at(-1)).toBe('  … and 9,995 more');
  });

  it('keeps the running batch in view when there are more batches than bars', () => {
    const batches = Array.from({ length: 40 }, (_, n) => batch(n + 1, n < 20 ? 'done' : n === 20 ? 'running' : 'pending', [`h${n}`]));
    const lines = frame(detail('Releasing', batches, []), T0, 100, { maxBatches: 6 }).split('\n');
    expect(lines.slice(1)).toEqual([
      '… 18 earlier batches',
      expect.stringMatching(/^batch 19\/40 .* done$/),
      expect.stringMatching(/^batch 20\/40 .* done$/),
      expect.stringMatching(/^batch 21\/40 .* running$/),
      expect.stringMatching(/^batch 22\/40 .* pending$/),
      expect.stringMatching(/^batch 23\/40 .* pending$/),
      expect.stringMatching(/^batch 24\/40 .* pending$/),
      '… 16 more batches',
    ]);
  });

  it('shows a rollback by its rollback batches and only the rollback steps', () => {
    const rollbackAt = T0 + 50_000;
    const back = (id: string, fields: Partial<InstanceProgress>) => instance(id, 1, { moved: 'switched', edition: '2.0', ...fields });
    const d = ReleaseDetailFns.fromPartial({
      ...detail('Rolling back', [batch(1, 'done', ['a', 'b'])], [
        back('a', { rollbackBatch: 1, status: 'rolled back', edition: '1.0', steps: [step('health', 'ok', 0, 4000), step('restart', 'ok', 51_000, 52_000, { phase: 'rollback' })] }),
        back('b', { rollbackBatch: 2, status: 'rolling back', steps: [step('health', 'ok', 0, 4000), step('drain', 'running', 53_000, 0, { phase: 'rollback' })] }),
      ], { rollbackBatchCount: 2, rollbackCurrentBatch: 2 }),
      changes: [{ atUnixMs: rollbackAt, actor: 'ops', action: 'rollback', app: 'shop', releaseId: 'r-7', comment: '', result: 'accepted' }],
    });
    expect(frame(d, T0 + 54_000, 80).split('\n')).toEqual([
      'release r-7: rolling shop 2.0 back · Rolling back · 4.00s',
      'rollback batch 1/2  ██████████████████████████████  1/1 done',
      'rollback batch 2/2  ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░  0/1 running',
      '  b  drain …  1.00s',
    ]);
  });

  it('never draws a line wider than the terminal, and counts every hidden instance', () => {
    const arbInstance = fc.record({
      name: fc.string({ minLength: 1, maxLength: 40 }),
      status: fc.constantFrom('pending', 'in progress', 'released', 'failed', 'unreachable'),
      stepStatus: fc.constantFrom('running', 'ok', 'failed', ''),
      error: fc.string({ maxLength: 200 }),
    });
    fc.assert(
      fc.property(fc.array(arbInstance, { maxLength: 60 }), fc.integer({ min: 20, max: 200 }), fc.integer({ min: 0, max: 15 }), (specs, columns, max) => {
        const instances = specs.map((s, n) =>
          instance(`${s.name}-${n}`, 1, { status: s.status, error: s.error, steps: s.stepStatus ? [step('drain', s.stepStatus, 0, s.stepStatus === 'running' ? 0 : 10)] : [] }),
        );
        const d = detail('Releasing', [batch(1, 'running', instances.map((i) => i.instance))], instances, { waitingFor: 'x'.repeat(300) });
        const lines = frame(d, T0 + 1000, columns, { maxInstances: max }).split('\n');
        for (const line of lines) expect([...line].length).toBeLessThanOrEqual(columns);
        const shown = lines.filter((l) => l.startsWith('  ') && !l.startsWith('  … and')).length;
        expect(shown).toBe(Math.min(max, instances.length));
        const more = lines.find((l) => l.startsWith('  … and'));
        // At 20 columns or more the count line fits whole.
        if (instances.length > max) expect(more).toBe(`  … and ${instances.length - max} more`);
        else expect(more).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
