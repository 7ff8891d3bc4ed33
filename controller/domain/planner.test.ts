// planBatches, table-driven.
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
});
