// Release and app files: the flags and the schema agree key for key, the committed JSON Schemas are the generated
// ones, a file means what the same flags mean, and a bad file is one line naming the file, the key and the expectation.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { bufferIo } from './io.js';
import { buildApp, buildReleaseSpec, type AppFlags, type ReleaseFlags } from './options.js';
import { createProgram } from './program.js';
import { explainSpecError, mergeSpec, readSpecFile, specJsonSchema, specSchema, type SpecKind } from './spec-file.js';

const ROOT = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'fleetwave-spec-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The verb as the real program defines it. */
function verb(...path: string[]): Command {
  let cmd = createProgram(bufferIo()) as Command;
  for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
  return cmd;
}

/** Options of a verb that are about running it, not about the release or app it defines. */
const NOT_SPEC = new Set(['controller', 'ca', 'tls', 'token', 'file', 'dry-run', 'watch']);
/** Schema keys that are no flag: the editor's schema pointer, and the subject the positional argument also gives. */
const NOT_FLAG: Record<SpecKind, string[]> = { release: ['$schema', 'app'], app: ['$schema', 'name'] };

function longNames(cmd: Command): string[] {
  // --no-start's key is start (commander's attribute), as in a file: start: false.
  return cmd.options.map((o) => o.long!.replace(/^--(no-)?/, '')).filter((name) => !NOT_SPEC.has(name)).sort();
}

function schemaKeys(kind: SpecKind): string[] {
  return Object.keys(specSchema(kind).shape).filter((key) => !NOT_FLAG[kind].includes(key)).sort();
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The verb after commander parsed `args` as for a real call (its action replaced: nothing is sent). */
function parsed(path: string[], args: string[]): Command {
  const program = createProgram(bufferIo());
  let target = program as Command;
  for (const name of path) target = target.commands.find((c) => c.name() === name)!;
  target.action(() => {});
  program.parse([...path, ...args], { from: 'user' });
  return target;
}

describe('flags and file schema', () => {
  it.each([
    [['release', 'create'], 'release'],
    [['app', 'apply'], 'app'],
    [['app', 'create'], 'app'],
  ] as const)('%j: every long option is a %s file key and every key an option', (path, kind) => {
    expect(longNames(verb(...path))).toEqual(schemaKeys(kind));
  });

  it.each(['release', 'app'] as const)('docs/schema/%s.schema.json is what the code generates (fleetwave schema KIND)', (kind) => {
    const committed = readFileSync(join(ROOT, 'docs', 'schema', `${kind}.schema.json`), 'utf8');
    expect(committed, `regenerate: node dist/cli/main.js schema ${kind} > docs/schema/${kind}.schema.json`).toBe(specJsonSchema(kind));
  });

  it('fleetwave schema prints the schema and refuses an unknown kind', async () => {
    const { runProgram } = await import('./program.js');
    const io = bufferIo();
    expect(await runProgram(['schema', 'app'], io)).toBe(0);
    expect(JSON.parse(io.stdout.join('\n')).title).toBe('fleetwave app file');
    const bad = bufferIo();
    expect(await runProgram(['schema', 'deploy'], bad)).toBe(2);
    expect(bad.stderr.join('\n').trim()).toBe("fleetwave: schema: 'deploy' is not one of release, app");
  });
});

describe('a file means what the same flags mean', () => {
  it('examples/release.yaml builds the spec its flags build', () => {
    const file = readSpecFile(join(ROOT, 'examples', 'release.yaml'), 'release');
    const fromFile = mergeSpec(parsed(['release', 'create'], []), file, 'shop', 'release');
    const flags = ['--edition', '2.0', '--group', 'all', '--strategy', 'rolling', '--batches', '2', '--batch-mode', 'auto', '--wait', '1s', '--drain', '2s', '--health-timeout', '5s', '--approval-before', '2', '--best-effort', 'off'];
    const fromFlags = mergeSpec(parsed(['release', 'create'], flags), undefined, 'shop', 'release');
    expect(buildReleaseSpec(fromFile.subject, fromFile.flags as ReleaseFlags)).toEqual(buildReleaseSpec(fromFlags.subject, fromFlags.flags as ReleaseFlags));
  });

  it('examples/app.yaml builds the app its flags build', () => {
    const file = readSpecFile(join(ROOT, 'examples', 'app.yaml'), 'app');
    const fromFile = mergeSpec(parsed(['app', 'apply'], []), file, undefined, 'app');
    const flags = ['--start', 'node server.js', '--env', 'START_DELAY_MS=50', '--health-path', '/healthz', '--stop-timeout', '2s', '--update-order', 'start-first'];
    const fromFlags = mergeSpec(parsed(['app', 'apply'], flags), undefined, 'shop', 'app');
    expect(buildApp(fromFile.subject, fromFile.flags as AppFlags)).toEqual(buildApp(fromFlags.subject, fromFlags.flags as AppFlags));
  });

  it('flags given beside the file win; the rest comes from the file', () => {
    const file = readSpecFile(write('override.yaml', 'edition: "1.0"\nbatches: 3\nstart: false\nfull-drain: true\n'), 'release');
    const { flags } = mergeSpec(parsed(['release', 'create'], ['--batches', '2', '--edition', '2.0']), file, 'shop', 'release');
    const spec = buildReleaseSpec('shop', flags as ReleaseFlags);
    expect(spec).toMatchObject({ edition: '2.0', batches: 2, start: false, fullDrain: true });
  });

  it('--no-start beside a file wins over start: true', () => {
    const file = readSpecFile(write('start.yaml', 'edition: "1.0"\nstart: true\n'), 'release');
    const { flags } = mergeSpec(parsed(['release', 'create'], ['--no-start']), file, 'shop', 'release');
    expect(buildReleaseSpec('shop', flags as ReleaseFlags).start).toBe(false);
  });

  it('JSON works as YAML does', () => {
    const file = readSpecFile(write('r.json', '{"edition": "2.0", "approval-before": [2, 3], "trigger-before": [4]}'), 'release');
    const spec = buildReleaseSpec('shop', mergeSpec(parsed(['release', 'create'], []), file, 'shop', 'release').flags as ReleaseFlags);
    expect(spec).toMatchObject({ edition: '2.0', approvalBefore: [2, 3], triggerBefore: [4] });
  });
});

describe('a bad file is one line: file, key, expectation', () => {
  const cases: Array<[string, SpecKind, string, string]> = [
    ['number-edition.yaml', 'release', 'edition: 2.0\n', 'edition: expected text; quote a number-like value ("2.0"), got 2'],
    ['typo.yaml', 'release', 'edition: "2"\nbatchs: 2\n', 'unknown key "batchs" (did you mean batches?)'],
    ['zero.yaml', 'release', 'batches: 0\n', 'batches: expected a whole number ≥ 1, got 0'],
    ['bare-wait.yaml', 'release', 'wait: 30\n', 'wait: expected a duration such as 500ms, 30s or 2m, got 30'],
    ['strategy.yaml', 'release', 'strategy: canary\n', 'strategy: expected one of rolling, grouped, atomic, got "canary"'],
    ['yes.yaml', 'release', 'force: yes\n', 'force: expected true or false, got "yes"'],
    ['list.yaml', 'release', '- edition: "2"\n', 'expected a map of keys (the long flag names, e.g. edition: 2.0), got a list'],
    ['env.yaml', 'app', 'env: [A=1]\n', 'env: expected record, got ["A=1"]'],
    ['health.yaml', 'app', 'health-path: healthz\n', 'health-path: expected a path starting with /, got "healthz"'],
    ['name.yaml', 'app', 'name: Shop\n', 'name: expected a name such as shop, got "Shop"'],
  ];
  it.each(cases)('%s', (name, kind, text, problem) => {
    const path = write(name, text);
    expect(() => readSpecFile(path, kind)).toThrow(`${path}: ${problem}`);
  });

  it('an unreadable or malformed file', () => {
    expect(() => readSpecFile(join(dir, 'absent.yaml'), 'release')).toThrow(`${join(dir, 'absent.yaml')}: cannot read the release file: ENOENT`);
    const broken = write('broken.yaml', 'edition: [\n');
    expect(() => readSpecFile(broken, 'release')).toThrow(new RegExp(`^${broken}: not valid YAML or JSON: `));
  });

  it('a value the builder refuses names the file and key when it came from the file, the flag otherwise', () => {
    const file = readSpecFile(write('apr.yaml', 'edition: "2"\nwait: 5 fortnights\n'), 'release');
    const cmd = parsed(['release', 'create'], []);
    const build = () => buildReleaseSpec('shop', mergeSpec(cmd, file, 'shop', 'release').flags as ReleaseFlags);
    let thrown: unknown;
    try {
      build();
    } catch (err) {
      thrown = explainSpecError(err, file, cmd);
    }
    expect((thrown as Error).message).toBe(`${file.path}: wait: '5 fortnights' is not a duration (examples: 500ms, 30s, 2m)`);
    const byFlag = parsed(['release', 'create'], ['--wait', 'soon']);
    try {
      buildReleaseSpec('shop', mergeSpec(byFlag, file, 'shop', 'release').flags as ReleaseFlags);
    } catch (err) {
      thrown = explainSpecError(err, file, byFlag);
    }
    expect((thrown as Error).message).toBe("--wait: 'soon' is not a duration (examples: 500ms, 30s, 2m)");
  });

  it('the argument and the file must name the same app; one of them must', () => {
    const file = readSpecFile(write('cart.yaml', 'app: cart\nedition: "2"\n'), 'release');
    expect(() => mergeSpec(parsed(['release', 'create'], []), file, 'shop', 'release')).toThrow(`${file.path}: app: the file is for 'cart', the command line says 'shop'`);
    const anonymous = readSpecFile(write('anon.yaml', 'edition: "2"\n'), 'release');
    expect(() => mergeSpec(parsed(['release', 'create'], []), anonymous, undefined, 'release')).toThrow(`${anonymous.path}: app: missing (give it in the file or as the argument)`);
  });
});
