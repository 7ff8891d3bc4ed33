// `release create --watch` on a real terminal: the CLI runs in a pseudo-terminal (util-linux `script`) against a
// real controller and two agents, and redraws its frame in place instead of printing a line per change.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { CLI_MAIN, Fleet, freePort, repoPath } from '../harness/fleet.js';
import { hasScript, spawnPty } from '../harness/pty.js';

const ESC = '\u001B[';

describe.skipIf(!hasScript())('release watch on a terminal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-watch-tty-'));
  const fleet = new Fleet(dir);

  beforeAll(async () => {
    // Given two agents in one group serving shop, and shop 1.0 installed
    await fleet.startNats();
    await fleet.startController();
    await fleet.startAgent('a1', 'blue', { shop: await freePort() });
    await fleet.startAgent('a2', 'blue', { shop: await freePort() });
    await fleet.adminClient.waitForAgents(['a1', 'a2']);
    const app = await fleet.cli(['app', 'create', 'shop', '--start', 'node server.js', '--env', 'START_DELAY_MS=200']);
    expect(app.code, app.stderr).toBe(0);
    const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition: '1.0', outDir: join(dir, 'packages'), name: 'shop' });
    const installed = await fleet.cli(['edition', 'install', 'shop', '1.0', '--file', pkg.path]);
    expect(installed.code, installed.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('redraws the frame in place, leaves the final frame on screen, then prints the summary', async () => {
    // When a release in two batches is created with --watch in a terminal
    const args = ['--controller', fleet.controller!.grpcAddress, 'release', 'create', 'shop', '--edition', '1.0', '--batches', '2', '--watch'];
    const cli = spawnPty(`exec '${process.execPath}' '${CLI_MAIN}' ${args.map((a) => `'${a}'`).join(' ')}`, { columns: 100, rows: 30 });
    try {
      const shown = await cli.waitFor(/release r-\S+ Released in .*: 2 released/, 'the watch to end with its summary', 120_000);
      expect(await cli.exited).toBe(0);
      // FLEETWAVE_PTY_LOG=FILE keeps what the terminal showed, to replay with `cat FILE`.
      if (process.env.FLEETWAVE_PTY_LOG) writeFileSync(process.env.FLEETWAVE_PTY_LOG, shown);

      // Then the frame was rewritten in place (cursor up, erase line), inside synchronized-output marks
      expect(shown).toMatch(/\u001B\[\d*A/);
      expect(shown).toContain(`${ESC}2K`);
      expect(shown).toContain(`${ESC}?2026h`);
      // and not printed as the plain lines a pipe gets
      expect(shown).not.toMatch(/\d\d:\d\d:\d\d batch 1\/2 \(blue\) started/);
      // and some frame showed an instance of the running batch on a step, with the step's time
      expect(shown).toMatch(/ {2}a[12] {2}[a-z-]+ … {2}\d/);
      // and the final frame stays on screen above the summary
      const summary = shown.search(/release r-\S+ Released in/);
      const finalFrame = shown.slice(shown.lastIndexOf('release r-', summary - 1), summary);
      expect(finalFrame).toMatch(/release r-\S+: shop 1\.0 to all · Released · /);
      expect(finalFrame).toMatch(/batch 1\/2 \(blue\) +█+ +1\/1 done in /);
      expect(finalFrame).toMatch(/batch 2\/2 \(blue\) +█+ +1\/1 done in /);
    } finally {
      await cli.proc.kill();
    }
  });
});
