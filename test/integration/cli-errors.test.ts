// The CLI's one exit-code rule, verb by verb, against a real controller (and one real agent for the
// group and batch checks): 2 bad input, names that do not exist included; 1 a valid request the state
// refuses; 3 the controller cannot be reached. Each error is one line on stderr, never a stack trace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, freePort, runCli } from '../harness/fleet.js';

type CliResult = { code: number; stdout: string; stderr: string };

function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(result.code, result.stderr).toBe(code);
}

const BAD_INPUT = 2;
const REFUSED = 1;
const UNREACHABLE = 3;

/** Operator actions on a release id; each refuses an unknown id as a bad name. */
const ACTIONS = ['start', 'pause', 'resume', 'continue', 'approve', 'reject', 'trigger', 'retry', 'rollback', 'cancel'];

describe('CLI errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-cli-'));
  const fleet = new Fleet(dir);
  const pkg = join(dir, 'app.jar');
  /** A release created with --no-start: it stays in "To release" and holds the app's group. */
  let held = '';

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController();
    await fleet.startAgent('a1', 'blue', { web: await freePort() });
    await fleet.adminClient.waitForAgents(['a1']);
    const app = await fleet.cli(['app', 'create', 'web', '--start', 'node server.js']);
    expect(app.code, app.stderr).toBe(0);
    writeFileSync(pkg, 'not really a jar');
    const edition = await fleet.cli(['edition', 'install', 'web', '1.0', '--file', pkg]);
    expect(edition.code, edition.stderr).toBe(0);
    const created = await fleet.cli(['release', 'create', 'web', '--edition', '1.0', '--batches', '1', '--no-start']);
    expect(created.code, created.stderr).toBe(0);
    held = created.stdout.trim();
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says so when the controller cannot be reached (3)', async () => {
    const port = await freePort();
    expectOneLineError(await runCli(['release', 'list'], `127.0.0.1:${port}`), UNREACHABLE, /cannot reach the controller at 127\.0\.0\.1:\d+/);
  });

  // One row per verb: the arguments, the exit code, and what the one line says.
  const badNames: Array<[string, string[], RegExp]> = [
    ['app create (malformed name)', ['app', 'create', 'Bad_Name', '--start', 'x'], /name 'Bad_Name' must match/],
    ['edition install (unknown app)', ['edition', 'install', 'nope', '1.0', '--file', 'PKG'], /app 'nope' does not exist/],
    ['edition list', ['edition', 'list', 'nope'], /app 'nope' does not exist/],
    ['edition show (unknown edition)', ['edition', 'show', 'web', '9.9'], /edition '9\.9' of app 'web' does not exist/],
    ['edition show (unknown app)', ['edition', 'show', 'nope', '1.0'], /app 'nope' does not exist/],
    ['release create (unknown app)', ['release', 'create', 'nope', '--edition', '1.0'], /app 'nope' does not exist/],
    ['release create (unknown edition)', ['release', 'create', 'web', '--edition', '9.9'], /edition '9\.9' of app 'web' does not exist/],
    ['release create (unknown group)', ['release', 'create', 'web', '--edition', '1.0', '--group', 'nope'], /group 'nope' has no instance/],
    ['release create (too many batches)', ['release', 'create', 'web', '--edition', '1.0', '--batches', '5'], /5 batches .* only 1 instance/],
    ['release create (0 batches)', ['release', 'create', 'web', '--edition', '1.0', '--batches', '0'], /batch/i],
    ['release create (bad duration)', ['release', 'create', 'web', '--edition', '1.0', '--drain', 'soon'], /drain/i],
    ['release create (negative duration)', ['release', 'create', 'web', '--edition', '1.0', '--wait', '-5s'], /wait/i],
    ['release show', ['release', 'show', 'nope'], /release 'nope' does not exist/],
    ['release list', ['release', 'list', 'nope'], /app 'nope' does not exist/],
    ['release watch', ['release', 'watch', 'nope'], /release 'nope' does not exist/],
    ...ACTIONS.map((action): [string, string[], RegExp] => [`release ${action}`, ['release', action, 'nope'], /release 'nope' does not exist/]),
    ['rollback (back-out, unknown app)', ['rollback', 'nope'], /app 'nope' does not exist/],
    ['rollback (back-out, unknown group)', ['rollback', 'web', '--group', 'nope'], /group 'nope' has no instance of app 'web'/],
    ['instance list', ['instance', 'list', 'nope'], /app 'nope' does not exist/],
    ['history', ['history', 'nope'], /app 'nope' does not exist/],
    ['token revoke', ['token', 'revoke', 'nope'], /token 'nope' does not exist/],
    ['token create (unknown role)', ['token', 'create', 'ci', '--role', 'boss'], /role 'boss' must be one of/],
    ['an unknown verb', ['frobnicate'], /unknown command/i],
  ];

  it.each(badNames)('%s: bad input, exit 2', async (_verb, args, pattern) => {
    expectOneLineError(await fleet.cli(args.map((a) => (a === 'PKG' ? pkg : a))), BAD_INPUT, pattern);
  });

  // Valid requests the state refuses. HELD is the release waiting in "To release".
  const refusals: Array<[string, string[], RegExp]> = [
    ['app create (exists)', ['app', 'create', 'web', '--start', 'x'], /app 'web' already exists/],
    ['edition install (exists)', ['edition', 'install', 'web', '1.0', '--file', 'PKG'], /edition '1\.0' of app 'web' already exists/],
    ['release create (a release is active)', ['release', 'create', 'web', '--edition', '1.0', '--batches', '1'], /release r-\S+ of app 'web' is still active/],
    ['release pause (not releasing)', ['release', 'pause', 'HELD'], /is To release; cannot pause it/],
    ['release approve (nothing waits)', ['release', 'approve', 'HELD'], /is not waiting for an approval/],
    ['release rollback (nothing moved)', ['release', 'rollback', 'HELD'], /cannot roll it back/],
    ['rollback (back-out, nothing released)', ['rollback', 'web'], /app 'web' has no Released release to back out/],
  ];

  it.each(refusals)('%s: refused, exit 1', async (_verb, args, pattern) => {
    expectOneLineError(await fleet.cli(args.map((a) => (a === 'PKG' ? pkg : a === 'HELD' ? held : a))), REFUSED, pattern);
  });

  it('keeps the first edition after a refused install', async () => {
    const editions = await fleet.cli(['edition', 'list', 'web', '--output', 'json']);
    expect(editions.code, editions.stderr).toBe(0);
    expect(JSON.parse(editions.stdout)).toMatchObject([{ app: 'web', name: '1.0', format: 'file', fileName: 'app.jar' }]);
  });

  it('records refused creates and actions in the history, with actor and reason', async () => {
    const history = await fleet.cli(['history', 'web', '--output', 'json']);
    expect(history.code, history.stderr).toBe(0);
    const refused = (JSON.parse(history.stdout) as Array<{ actor: string; action: string; result: string }>).filter((c) => c.result.startsWith('refused'));
    const actor = expect.stringMatching(/\S+@\S+/);
    expect(refused).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor, action: 'create', result: "refused: edition '9.9' of app 'web' does not exist" }),
        expect.objectContaining({ actor, action: 'create', result: expect.stringMatching(/^refused: release r-\S+ of app 'web' is still active/) }),
        expect.objectContaining({ actor, action: 'pause', result: expect.stringMatching(/^refused: .*cannot pause it/) }),
        expect.objectContaining({ actor, action: 'back-out', result: expect.stringMatching(/^refused: app 'web' has no Released release/) }),
      ]),
    );
  });
});
