// Every allowed and every refused move of the transition table.
import { describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../common/errors.js';
import { BATCH_STATUSES, canTransition, INSTANCE_STATUSES, RELEASE_STATUSES, transition, type Machine } from './transitions.js';

/** The expected table, written out independently of the code. */
const ALLOWED: Record<Machine, string[]> = {
  release: [
    'To release -> Releasing',
    'To release -> Release failed',
    'Releasing -> Released',
    'Releasing -> Release failed',
    'Releasing -> Suspending',
    'Releasing -> Rolling back',
    'Released -> Releasing',
    'Released -> Rolling back',
    'Release failed -> Releasing',
    'Release failed -> Rolling back',
    'Rolling back -> Rolled back',
    'Rolling back -> Rollback failed',
    'Rollback failed -> Rolling back',
    'Suspending -> Suspended',
    'Suspending -> Releasing',
    'Suspending -> Release failed',
    'Suspending -> Rolling back',
    'Suspended -> Releasing',
    'Suspended -> Release failed',
    'Suspended -> Rolling back',
  ],
  batch: ['pending -> waiting', 'pending -> running', 'pending -> failed', 'waiting -> running', 'waiting -> failed', 'running -> done', 'running -> failed', 'failed -> pending'],
  instance: [
    'pending -> in progress',
    'pending -> released',
    'pending -> failed',
    'pending -> unreachable',
    'pending -> rolling back',
    'in progress -> released',
    'in progress -> failed',
    'in progress -> unreachable',
    'in progress -> rolled back',
    'in progress -> rolling back',
    'released -> rolled back',
    'released -> failed',
    'released -> unreachable',
    'released -> rolling back',
    'failed -> pending',
    'failed -> rolled back',
    'failed -> rolling back',
    'unreachable -> pending',
    'unreachable -> rolled back',
    'unreachable -> failed',
    'unreachable -> rolling back',
    'rolling back -> rolled back',
    'rolling back -> failed',
    'rolling back -> unreachable',
    'rolled back -> pending',
  ],
};

const STATES: Record<Machine, readonly string[]> = { release: RELEASE_STATUSES, batch: BATCH_STATUSES, instance: INSTANCE_STATUSES };

for (const machine of Object.keys(STATES) as Machine[]) {
  const pairs = STATES[machine].flatMap((from) => STATES[machine].map((to) => [from, to] as const));
  const allowed = pairs.filter(([from, to]) => ALLOWED[machine].includes(`${from} -> ${to}`));
  const refused = pairs.filter(([from, to]) => !ALLOWED[machine].includes(`${from} -> ${to}`));

  describe(`${machine} transitions`, () => {
    it('covers every listed move', () => {
      expect(allowed).toHaveLength(ALLOWED[machine].length);
    });
    it.each(allowed)(`allows %s -> %s`, (from, to) => {
      expect(canTransition(machine, from as never, to as never)).toBe(true);
      expect(transition(machine, from as never, to as never)).toBe(to);
    });
    it.each(refused)(`refuses %s -> %s`, (from, to) => {
      expect(canTransition(machine, from as never, to as never)).toBe(false);
      expect(() => transition(machine, from as never, to as never)).toThrow(IllegalTransitionError);
      expect(() => transition(machine, from as never, to as never)).toThrow(`${machine}: cannot move from '${from}' to '${to}'`);
    });
  });
}
