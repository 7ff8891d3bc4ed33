import { describe, expect, it } from 'vitest';
import { BadInputError, ConflictError, IllegalTransitionError } from '../../common/errors.js';
import { batchCount, checkTargetMove, checkUpgradeMove, planUpgrade } from './agent-upgrade.js';

const agents = (n: number, group = 'g') => Array.from({ length: n }, (_, i) => ({ id: `a${String(i).padStart(2, '0')}`, group, version: '0.1.0' }));
const sizes = (plan: ReturnType<typeof planUpgrade>) => Array.from({ length: batchCount(plan) }, (_, i) => plan.filter((t) => t.batch === i + 1).length);

describe('planUpgrade', () => {
  it.each([
    [7, { batches: 5, batchSize: 0 }, [2, 2, 1, 1, 1]],
    [3, { batches: 5, batchSize: 0 }, [1, 1, 1]],
    [6, { batches: 0, batchSize: 0 }, [6]],
    [7, { batches: 0, batchSize: 3 }, [3, 3, 1]],
    [1, { batches: 1, batchSize: 0 }, [1]],
  ])('%i agents, %o → batch sizes %o', (n, options, expected) => {
    expect(sizes(planUpgrade(agents(n), options))).toEqual(expected);
  });

  it('orders agents by group, then id', () => {
    const plan = planUpgrade([{ id: 'b', group: 'west', version: '' }, { id: 'z', group: 'east', version: '' }, { id: 'a', group: 'west', version: '' }], { batches: 3, batchSize: 0 });
    expect(plan.map((t) => `${t.batch}:${t.group}/${t.id}`)).toEqual(['1:east/z', '2:west/a', '3:west/b']);
  });

  it('refuses both split flags, and an empty fleet', () => {
    expect(() => planUpgrade(agents(2), { batches: 2, batchSize: 1 })).toThrow(BadInputError);
    expect(() => planUpgrade([], { batches: 1, batchSize: 0 })).toThrow(ConflictError);
  });
});

describe('transition table', () => {
  it.each([
    ['pending', 'sent'],
    ['pending', 'upgraded'],
    ['pending', 'skipped'],
    ['sent', 'restarting'],
    ['sent', 'upgraded'],
    ['sent', 'failed'],
    ['restarting', 'upgraded'],
    ['restarting', 'failed'],
  ] as const)('target %s → %s is allowed', (from, to) => expect(() => checkTargetMove('a', from, to)).not.toThrow());

  it.each([
    ['pending', 'restarting'],
    ['upgraded', 'failed'],
    ['failed', 'upgraded'],
    ['restarting', 'sent'],
    ['skipped', 'sent'],
  ] as const)('target %s → %s throws', (from, to) => expect(() => checkTargetMove('a', from, to)).toThrow(IllegalTransitionError));

  it.each([
    ['upgrading', 'upgraded'],
    ['upgrading', 'failed'],
    ['upgrading', 'cancelled'],
  ] as const)('upgrade %s → %s is allowed', (from, to) => expect(() => checkUpgradeMove('u', from, to)).not.toThrow());

  it.each([
    ['failed', 'upgraded'],
    ['upgraded', 'cancelled'],
    ['failed', 'cancelled'],
    ['cancelled', 'upgrading'],
    ['cancelled', 'upgraded'],
    ['cancelled', 'failed'],
  ] as const)('an upgrade ends once: %s → %s throws', (from, to) => expect(() => checkUpgradeMove('u', from, to)).toThrow(IllegalTransitionError));
});
