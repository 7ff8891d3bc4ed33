// The controller's layers stay apart: the domain imports neither store nor engine, the store never imports the
// engine, and the engine reaches the store only through the domain's port (ports.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const controller = join(import.meta.dirname, '..');

/** Test support beside the engine's tests: it seeds a real Store, as the tests themselves may. */
const ENGINE_TEST_SUPPORT = new Set(['fake-fleet.ts']);

function sources(layer: string, keep: (name: string) => boolean = () => true): string[] {
  return readdirSync(join(controller, layer))
    .filter((name) => name.endsWith('.ts') && keep(name))
    .map((name) => join(controller, layer, name));
}

const isTest = (name: string) => name.endsWith('.test.ts') || ENGINE_TEST_SUPPORT.has(name);

/** The relative modules a file imports (static, type-only, dynamic, re-exports), as paths under controller/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => relative(controller, resolve(dirname(file), s)));
}

/** "file → module" for every import of `files` that lands in one of the `forbidden` layers. */
function crossings(files: string[], forbidden: string[]): string[] {
  return files.flatMap((file) =>
    importsOf(file)
      .filter((target) => forbidden.some((layer) => target.startsWith(`${layer}/`)))
      .map((target) => `${relative(controller, file)} → ${target}`),
  );
}

describe('controller layers', () => {
  it('reads the imports it checks', () => {
    // Guards the scan itself: a pattern that matched nothing would pass every check below.
    expect(importsOf(join(controller, 'engine/engine.ts'))).toContain('domain/ports.js');
    expect(importsOf(join(controller, 'store/store.ts'))).toContain('domain/ports.js');
  });

  it('the domain imports neither the store nor the engine', () => {
    expect(crossings(sources('domain'), ['store', 'engine'])).toEqual([]);
  });

  it('the store never imports the engine (tests included)', () => {
    expect(crossings(sources('store'), ['engine'])).toEqual([]);
  });

  it('the engine reaches the store only through the port (its tests may open a real Store)', () => {
    expect(crossings(sources('engine', (name) => !isTest(name)), ['store'])).toEqual([]);
  });
});
