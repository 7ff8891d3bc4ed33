// Properties of the one transition table: `transition()` allows exactly the table's moves, random walks along
// allowed moves stay inside the known statuses, and every status is reachable from where its machine starts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../common/errors.js';
import { BATCH_STATUSES, canTransition, INSTANCE_STATUSES, RELEASE_STATUSES, transition, TRANSITIONS, type Machine } from '../../controller/engine/transitions.js';
import { runs } from './seed.js';

const STATUSES: Record<Machine, readonly string[]> = { release: RELEASE_STATUSES, batch: BATCH_STATUSES, instance: INSTANCE_STATUSES };
const START: Record<Machine, string> = { release: 'To release', batch: 'pending', instance: 'pending' };
const machines = Object.keys(STATUSES) as Machine[];
const move = (m: Machine, from: string, to: string) => transition(m as 'release', from as never, to as never);

describe('the transition table', () => {
  it('lets transition() through exactly the moves the table lists, and throws IllegalTransitionError otherwise', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...machines).chain((m) => fc.tuple(fc.constant(m), fc.constantFrom(...STATUSES[m]), fc.constantFrom(...STATUSES[m]))),
        ([m, from, to]) => {
          const allowed = ((TRANSITIONS[m] as Record<string, readonly string[]>)[from] ?? []).includes(to);
          expect(canTransition(m as 'release', from as never, to as never)).toBe(allowed);
          if (allowed) expect(move(m, from, to)).toBe(to);
          else expect(() => move(m, from, to)).toThrow(IllegalTransitionError);
        },
      ),
      runs(1000),
    );
  });

  it('keeps random walks of allowed moves inside the known statuses, never standing still', () => {
    fc.assert(
      fc.property(fc.constantFrom(...machines), fc.array(fc.nat(), { maxLength: 40 }), (m, picks) => {
        let status = START[m];
        for (const pick of picks) {
          const moves = (TRANSITIONS[m] as Record<string, readonly string[]>)[status]!;
          if (moves.length === 0) break;
          const next = moves[pick % moves.length]!;
          expect(next).not.toBe(status);
          status = move(m, status, next);
          expect(STATUSES[m]).toContain(status);
        }
      }),
      runs(500),
    );
  });

  it('reaches every status of a machine from its start', () => {
    for (const m of machines) {
      const seen = new Set([START[m]]);
      const queue = [START[m]];
      while (queue.length) for (const next of (TRANSITIONS[m] as Record<string, readonly string[]>)[queue.shift()!]!) if (!seen.has(next) && seen.add(next)) queue.push(next);
      expect([...seen].sort()).toEqual([...STATUSES[m]].sort());
    }
  });
});
