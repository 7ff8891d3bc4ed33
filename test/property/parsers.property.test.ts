// Properties of the operator-facing parsers: durations, byte sizes and the release spec compiler either give a
// well-formed value or throw BadInputError with a clear message; they never throw anything else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../common/durations.js';
import { BadInputError } from '../../common/errors.js';
import { parseByteSize } from '../../common/sizes.js';
import { compileReleaseSpec } from '../../controller/domain/spec.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { runs } from './seed.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

function badInputOr<T>(fn: () => T): T | BadInputError {
  try {
    return fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).not.toMatch(/\n/);
    return err as BadInputError;
  }
}

describe('parseDuration', () => {
  it('reads N<unit> as N times the unit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(...(Object.keys(UNIT_MS) as (keyof typeof UNIT_MS)[])), (n, unit) => {
        expect(parseDuration(`${n}${unit}`)).toBe(n * UNIT_MS[unit]);
      }),
      runs(300),
    );
  });

  it('gives a whole number of milliseconds ≥ 0 or a BadInputError naming the flag, for any text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^-?\d{0,6}(\.\d{0,3})?\s?[a-zA-Z]{0,6}$/)), (text) => {
        const result = badInputOr(() => parseDuration(text, '--drain'));
        if (result instanceof BadInputError) expect(result.message).toMatch(/^--drain: /);
        else expect(Number.isInteger(result) && result >= 0).toBe(true);
      }),
      runs(1000),
    );
  });
});

describe('parseByteSize', () => {
  it('gives a whole number of bytes ≥ the minimum or a BadInputError, for any text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^\d{0,5}(\.\d)?[kKmMgG]?i?[bB]?$/)), (text) => {
        const result = badInputOr(() => parseByteSize(text, '--max-package-size', 1));
        if (!(result instanceof BadInputError)) expect(Number.isSafeInteger(result) && result >= 1).toBe(true);
      }),
      runs(1000),
    );
  });
});

describe('compileReleaseSpec', () => {
  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
  const word = (valid: string[]) => maybe(fc.oneof(fc.constantFrom(...valid), fc.string({ maxLength: 8 })));
  const specArb = fc.record(
    {
      app: word(['shop', ' shop ', '']),
      edition: word(['2.0', '']),
      group: word(['all', 'blue', '']),
      strategy: word(['rolling', 'grouped', 'atomic', '']),
      batches: maybe(fc.nat(20)),
      groupSize: maybe(fc.nat(20)),
      batchMode: word(['auto', 'manual', '']),
      waitMs: maybe(fc.nat(100_000)),
      approvalBefore: maybe(fc.array(fc.integer({ min: -2, max: 10 }), { maxLength: 4 })),
      triggerBefore: maybe(fc.array(fc.integer({ min: -2, max: 10 }), { maxLength: 4 })),
      reset: word(['soft', 'hard', '']),
      drainMs: maybe(fc.nat(100_000)),
      start: maybe(fc.boolean()),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<Partial<ReleaseSpec>>;

  it('compiles any input into a complete spec, or refuses it with a BadInputError', () => {
    fc.assert(
      fc.property(specArb, (raw) => {
        const spec = badInputOr(() => compileReleaseSpec(raw));
        if (spec instanceof BadInputError) return;
        expect(spec.app).toBe(spec.app.trim());
        expect(spec.app.length).toBeGreaterThan(0);
        expect(spec.edition.length).toBeGreaterThan(0);
        expect(spec.group.length).toBeGreaterThan(0);
        expect(['rolling', 'grouped', 'atomic']).toContain(spec.strategy);
        expect(['auto', 'manual']).toContain(spec.batchMode);
        expect(['soft', 'hard']).toContain(spec.reset);
        expect(spec.batches).toBeGreaterThanOrEqual(1);
        expect(spec.groupSize).toBeGreaterThanOrEqual(1);
        expect(spec.health.retries).toBeGreaterThanOrEqual(1);
        for (const list of [spec.approvalBefore, spec.triggerBefore]) {
          expect(list).toEqual([...new Set(list)].sort((a, b) => a - b));
          expect(list.every((b) => Number.isInteger(b) && b >= 1)).toBe(true);
        }
      }),
      runs(1000),
    );
  });
});
