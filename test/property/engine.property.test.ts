// The release engine under random fleets and random interleavings of operator actions and agent results (real engine,
// real SQLite file, the in-memory fake fleet): every status change it makes is one the transition table allows, no
// command is delivered twice nor a replayed result acted on twice, a release ends once the fleet keeps answering,
// and a failed first batch leaves the old edition active everywhere.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { TRANSITIONS, RELEASE_STATUSES, BATCH_STATUSES, INSTANCE_STATUSES, type Machine } from '../../controller/domain/transitions.js';
import { EngineWorld, MOVES_SEEN, OPERATOR_ACTIONS, type Input } from './engine-model.js';
import { runs } from './seed.js';

const fleetArb = fc.record({ east: fc.integer({ min: 1, max: 4 }), west: fc.integer({ min: 0, max: 3 }) });

const specArb = fc.record({
  batches: fc.integer({ min: 1, max: 3 }),
  bestEffort: fc.boolean(),
  autoRollback: fc.boolean(),
  batchMode: fc.constantFrom('auto', 'manual'),
  approvalBefore: fc.subarray([2, 3]),
  waitMs: fc.constantFrom(0, 60_000),
  fullDrain: fc.boolean(),
  maxUnavailable: fc.constantFrom(0, 1, 2),
  reset: fc.constantFrom('soft', 'hard'),
});

// Agent results come more often than operator actions, and mostly succeed, as in a real release: a release then
// gets past its downloads often enough to fail (or be acted on) mid-pipeline.
const resultArb = fc.oneof(
  ...(
    [
      ['ok', 8],
      ['drained', 3],
      ['failed', 1],
      ['timeout', 1],
      ['duplicate', 1],
    ] as const
  ).map(([result, weight]) => ({ weight, arbitrary: fc.constant(result) })),
);
const inputArb: fc.Arbitrary<Input> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...OPERATOR_ACTIONS).map((op) => ({ op })) },
  { weight: 6, arbitrary: fc.record({ result: resultArb, pick: fc.nat() }) },
  // Grouped worlds: the answers gathered so far reach the engine together (ignored by the others).
  { weight: 2, arbitrary: fc.constant({ flush: true as const }) },
);

/** Moves of operator actions, failures and retries that the fixed seed's cases must exercise. */
const CORE_MOVES = [
  'release: Releasing -> Suspending',
  'release: Suspending -> Suspended',
  'release: Suspending -> Releasing',
  'release: Suspended -> Releasing',
  'release: Releasing -> Released',
  'release: Releasing -> Release failed',
  'release: Releasing -> Rolling back',
  'release: Release failed -> Releasing',
  'release: Release failed -> Rolling back',
  'release: Released -> Releasing',
  'release: Rolling back -> Rolled back',
  'batch: pending -> waiting',
  'batch: waiting -> running',
  'batch: running -> failed',
  'instance: in progress -> failed',
  'instance: in progress -> rolling back',
  'instance: released -> rolling back',
  'instance: rolling back -> rolled back',
  'instance: failed -> pending',
];

describe('the release engine', () => {
  it('keeps to the transition table, runs each command once, ends when the fleet answers, and keeps the first-batch rule', () => {
    fc.assert(
      // Two rounds of random inputs, each followed by a fleet that keeps answering: the second acts on a release
      // that has ended (retry, rollback) as well as on one still moving.
      // Half the worlds hand the agents' answers over in groups, as the controller's inbox does with one turn's.
      fc.property(fleetArb, specArb, fc.array(inputArb, { maxLength: 80 }), fc.array(inputArb, { maxLength: 40 }), fc.boolean(), ({ east, west }, spec, first, second, grouped) => {
        const world = new EngineWorld(east, west, grouped);
        try {
          // Batches per group: at most the smaller group's size, so the planner accepts the spec.
          const batches = Math.min(spec.batches, east, west || east);
          world.create({ ...spec, batches } as Partial<ReleaseSpec>);
          for (const inputs of [first, second]) {
            for (const input of inputs) world.apply(input);
            const ended = world.settle();
            expect(world.violations).toEqual([]);
            expect(ended, `release still ${world.status} once the fleet kept answering`).toBe(true);
          }
          expect(world.commandIdsUnique()).toBe(true);
        } finally {
          world.close();
        }
      }),
      runs(60),
    );
    // The fixed seed's cases reach the moves the invariants are about (a generator change that stops reaching
    // them fails here); another FC_SEED may need more runs, so only the fixed one is held to it.
    if (!process.env.FC_SEED) expect(CORE_MOVES.filter((m) => !MOVES_SEEN.has(m))).toEqual([]);
  });

  it('atomic: moves a half only once the routers hold what it needs, ends with the routers told, and keeps the rest', () => {
    const atomicSpecArb = specArb.map((spec) => ({ ...spec, strategy: 'atomic', approvalBefore: spec.approvalBefore.map((b) => b - 1) }));
    // The routers ack now and then, between the agents' answers and the operator's actions.
    const atomicInputArb: fc.Arbitrary<Input> = fc.oneof({ weight: 8, arbitrary: inputArb }, { weight: 2, arbitrary: fc.constant({ route: true as const }) });
    fc.assert(
      fc.property(fleetArb, atomicSpecArb, fc.array(atomicInputArb, { maxLength: 80 }), fc.array(atomicInputArb, { maxLength: 40 }), fc.boolean(), ({ east, west }, spec, first, second, grouped) => {
        const world = new EngineWorld(east, west, grouped, true);
        try {
          world.create(spec as Partial<ReleaseSpec>);
          for (const inputs of [first, second]) {
            for (const input of inputs) world.apply(input);
            const ended = world.settle();
            expect(world.violations).toEqual([]);
            expect(ended, `release still ${world.status} once the fleet and the routers kept answering`).toBe(true);
            expect(world.routesSettled()).toEqual([]);
          }
          expect(world.commandIdsUnique()).toBe(true);
        } finally {
          world.close();
        }
      }),
      runs(40),
    );
  });

  it('has no status a machine cannot reach from where it starts', () => {
    const statuses: Record<Machine, readonly string[]> = { release: RELEASE_STATUSES, batch: BATCH_STATUSES, instance: INSTANCE_STATUSES };
    for (const m of Object.keys(statuses) as Machine[]) {
      const start = statuses[m][0]!;
      const seen = new Set([start]);
      const queue = [start];
      while (queue.length) for (const next of (TRANSITIONS[m] as Record<string, readonly string[]>)[queue.shift()!]!) if (!seen.has(next) && seen.add(next)) queue.push(next);
      expect([...seen].sort()).toEqual([...statuses[m]].sort());
    }
  });
});
