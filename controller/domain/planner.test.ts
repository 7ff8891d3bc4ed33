// planBatches, table-driven, and the atomic halves as a property over random fleets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadInputError, ConflictError, NotFoundError } from '../../common/errors.js';
import { planBatches, type PlanInput } from './planner.js';

const fleet = [
  { id: 'e3', group: 'east' },
  { id: 'e1', group: 'east' },
  { id: 'e2', group: 'east' },
  { id: 'e4', group: 'east' },
  { id: 'e5', group: 'east' },
  { id: 'w2', group: 'west' },
  { id: 'w1', group: 'west' },
  { id: 'a1', group: 'alpha' },
];

const rolling = (group: string, batches: number): PlanInput => ({ group, strategy: 'rolling', batches, groupSize: 1 });
const grouped = (group: string, groupSize: number): PlanInput => ({ group, strategy: 'grouped', batches: 2, groupSize });
// batches and groupSize do not count for atomic: the values here would be refused by the other strategies.
const atomic = (group: string): PlanInput => ({ group, strategy: 'atomic', batches: 9, groupSize: 9 });

describe('planBatches', () => {
  const cases: Array<[string, PlanInput, Array<[string, string[]]>]> = [
    ['rolling, one group, even split', rolling('west', 2), [['west', ['w1']], ['west', ['w2']]]],
    ['rolling, uneven split puts the extra first', rolling('east', 2), [['east', ['e1', 'e2', 'e3']], ['east', ['e4', 'e5']]]],
    ['rolling, one batch', rolling('east', 1), [['east', ['e1', 'e2', 'e3', 'e4', 'e5']]]],
    ['rolling, as many batches as instances', rolling('west', 2), [['west', ['w1']], ['west', ['w2']]]],
    ['rolling, 3 of 5', rolling('east', 3), [['east', ['e1', 'e2']], ['east', ['e3', 'e4']], ['east', ['e5']]]],
    [
      'rolling, all groups sorted by name',
      rolling('all', 1),
      [['alpha', ['a1']], ['east', ['e1', 'e2', 'e3', 'e4', 'e5']], ['west', ['w1', 'w2']]],
    ],
    ['grouped, default size 1', grouped('west', 1), [['west', ['w1']], ['west', ['w2']]]],
    ['grouped, size 2', grouped('east', 2), [['east', ['e1', 'e2']], ['east', ['e3', 'e4']], ['east', ['e5']]]],
    ['grouped, size of the whole group', grouped('west', 2), [['west', ['w1', 'w2']]]],
    ['atomic, one group, odd count: the first half is the larger one', atomic('east'), [['east', ['e1', 'e2', 'e3']], ['east', ['e4', 'e5']]]],
    ['atomic, two instances: one each', atomic('west'), [['west', ['w1']], ['west', ['w2']]]],
    ['atomic, one instance: one batch', atomic('alpha'), [['alpha', ['a1']]]],
    [
      'atomic, all groups together by sorted id (a half over several groups names the target)',
      atomic('all'),
      [['all', ['a1', 'e1', 'e2', 'e3']], ['all', ['e4', 'e5', 'w1', 'w2']]],
    ],
    ['grouped, all groups', grouped('all', 1), [['alpha', ['a1']], ['east', ['e1']], ['east', ['e2']], ['east', ['e3']], ['east', ['e4']], ['east', ['e5']], ['west', ['w1']], ['west', ['w2']]]],
  ];
  it.each(cases)('%s', (_name, spec, expected) => {
    const batches = planBatches(spec, fleet);
    expect(batches.map((b) => [b.group, b.instances])).toEqual(expected);
    expect(batches.map((b) => b.number)).toEqual(expected.map((_, i) => i + 1));
  });

  const errors: Array<[string, PlanInput, new (...args: never[]) => Error, RegExp]> = [
    ['0 batches', rolling('east', 0), BadInputError, /at least 1/],
    ['more batches than instances', rolling('west', 3), BadInputError, /3 batches for group 'west' but it has only 2/],
    ['more batches than the smallest group with all', rolling('all', 2), BadInputError, /group 'alpha'/],
    ['unknown group', rolling('north', 1), NotFoundError, /group 'north' has no instance/],
    ['unknown group, atomic', atomic('north'), NotFoundError, /group 'north' has no instance/],
    ['group size 0', grouped('east', 0), BadInputError, /group size/],
    ['group size larger than the group', grouped('west', 3), BadInputError, /group size 3 but group 'west' has only 2/],
    ['group size larger than the smallest group with all', grouped('all', 2), BadInputError, /group 'alpha'/],
  ];
  it.each(errors)('refuses %s', (_name, spec, type, message) => {
    expect(() => planBatches(spec, fleet)).toThrow(type);
    expect(() => planBatches(spec, fleet)).toThrow(message);
  });

  it('refuses an app without instances (the state: rc 1), and a named group without instances (a bad name: rc 2)', () => {
    expect(() => planBatches(rolling('all', 1), [])).toThrow(ConflictError);
    expect(() => planBatches(rolling('blue', 1), [])).toThrow(NotFoundError);
  });

  it('atomic: two halves of the whole target, sorted, the first ceil(n/2); one batch for one instance', () => {
    const fleetArb = fc.uniqueArray(fc.record({ id: fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), group: fc.constantFrom('blue', 'green', 'pilot') }), {
      minLength: 1,
      maxLength: 30,
      selector: (i) => i.id,
    });
    fc.assert(
      fc.property(fleetArb, fc.boolean(), (instances, all) => {
        const group = all ? 'all' : instances[0]!.group;
        const target = instances.filter((i) => all || i.group === group).map((i) => i.id).sort();
        const batches = planBatches(atomic(group), instances);
        expect(batches.map((b) => b.number)).toEqual(target.length === 1 ? [1] : [1, 2]);
        expect(batches.flatMap((b) => b.instances)).toEqual(target);
        expect(batches[0]!.instances.length).toBe(Math.ceil(target.length / 2));
        for (const b of batches) {
          const groups = new Set(b.instances.map((id) => instances.find((i) => i.id === id)!.group));
          expect(b.group).toBe(groups.size === 1 ? [...groups][0] : group);
        }
      }),
      { seed: 20261122, numRuns: 200 },
    );
  });
});
