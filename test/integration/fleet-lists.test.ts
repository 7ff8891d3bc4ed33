// `agent list`, `instance list` and `release show` against a real controller and real agents: the server filters
// and pages (--group, --status, --edition, --limit, --after), the table opens with the summary, JSON is one array,
// and bad flags or cursors are one line and exit 2.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, freePort, waitFor } from '../harness/fleet.js';

type CliResult = { code: number; stdout: string; stderr: string };

function ok(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

function badInput(result: CliResult, pattern: RegExp): void {
  expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
}

/** The cursor a --limit listing printed for its next page. */
function nextCursor(text: string): string {
  const cursor = /next page: --after (\S+)/.exec(text)?.[1];
  expect(cursor, text).toBeTruthy();
  return cursor!;
}

describe('fleet listings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-lists-'));
  const fleet = new Fleet(dir);
  /** A release created with --no-start: its instances stay pending, batch 1 blue (a1, a2), batch 2 green (a3). */
  let release = '';

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController();
    await fleet.startAgent('a1', 'blue', { web: await freePort() });
    await fleet.startAgent('a2', 'blue', { web: await freePort() });
    await fleet.startAgent('a3', 'green', { web: await freePort() });
    await fleet.startAgent('a4', 'green', {});
    await fleet.adminClient.waitForAgents(['a1', 'a2', 'a3', 'a4']);
    ok(await fleet.cli(['app', 'create', 'web', '--start', 'node server.js']));
    const pkg = join(dir, 'app.bin');
    writeFileSync(pkg, 'not really an app');
    ok(await fleet.cli(['edition', 'install', 'web', '1.0', '--file', pkg]));
    release = ok(await fleet.cli(['release', 'create', 'web', '--edition', '1.0', '--batches', '1', '--no-start'])).trim();
  }, 90_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('agent list opens with the counts per group and status, then pages on the server', async () => {
    const first = ok(await fleet.cli(['agent', 'list', '--limit', '3']));
    const lines = first.split('\n');
    expect(lines[0]).toBe('4 agents: 4 connected');
    expect(lines[1]).toMatch(/^GROUP\s+TOTAL\s+CONNECTED$/);
    expect(lines.slice(2, 4)).toEqual([expect.stringMatching(/^blue\s+2\s+2$/), expect.stringMatching(/^green\s+2\s+2$/)]);
    expect(lines[5]).toMatch(/^ID\s+GROUP\s+STATUS/);
    expect(lines.slice(6, 9).map((l) => l.split(/\s+/)[0])).toEqual(['a1', 'a2', 'a3']);
    const rest = JSON.parse(ok(await fleet.cli(['agent', 'list', '--after', nextCursor(first), '-o', 'json'])));
    expect(rest.map((a: { id: string }) => a.id)).toEqual(['a4']);

    const blue = JSON.parse(ok(await fleet.cli(['agent', 'list', '--group', 'blue', '-o', 'json'])));
    expect(blue.map((a: { id: string }) => a.id)).toEqual(['a1', 'a2']);
    expect(ok(await fleet.cli(['agent', 'list', '--edition', '9.9']))).toMatch(/^0 agents\n/);
  });

  it('agent list --status follows an agent that goes away', async () => {
    await fleet.agents.find((a) => a.id === 'a4')!.stop();
    await waitFor('a4 unreachable', async () => (await fleet.adminClient.agents()).find((a) => a.id === 'a4')?.status === 'unreachable', 30_000);
    const gone = JSON.parse(ok(await fleet.cli(['agent', 'list', '--status', 'unreachable', '-o', 'json'])));
    expect(gone.map((a: { id: string }) => a.id)).toEqual(['a4']);
    expect(ok(await fleet.cli(['agent', 'list']))).toMatch(/^4 agents: 3 connected, 1 unreachable\n/);
  });

  it('instance list filters by group, status and edition on the server', async () => {
    const all = ok(await fleet.cli(['instance', 'list', 'web']));
    expect(all.split('\n')[0]).toMatch(/^3 instances: 3 \w+$/);
    const green = JSON.parse(ok(await fleet.cli(['instance', 'list', 'web', '--group', 'green', '-o', 'json'])));
    expect(green.map((i: { instance: string }) => i.instance)).toEqual(['a3']);
    expect(JSON.parse(ok(await fleet.cli(['instance', 'list', '--edition', '1.0', '-o', 'json'])))).toEqual([]);
    const limited = await fleet.cli(['instance', 'list', 'web', '--limit', '2', '-o', 'json']);
    expect(JSON.parse(ok(limited)).map((i: { instance: string }) => i.instance)).toEqual(['a1', 'a2']);
    const rest = JSON.parse(ok(await fleet.cli(['instance', 'list', 'web', '--after', nextCursor(limited.stderr), '-o', 'json'])));
    expect(rest.map((i: { instance: string }) => i.instance)).toEqual(['a3']);
  });

  it('release show prints the counts per batch and status first, and pages and filters the instances', async () => {
    const show = ok(await fleet.cli(['release', 'show', release]));
    expect(show).toMatch(/^Instances 3: 3 pending$/m);
    expect(show).toMatch(/^ {2}1\s+blue\s+pending\s+.*2 pending\s+a1 a2$/m);
    expect(show).toMatch(/^ {2}2\s+green\s+pending\s+.*1 pending\s+a3$/m);
    expect(show.indexOf('Batches')).toBeLessThan(show.indexOf('a1 (blue, batch 1): pending'));

    const page = await fleet.cli(['release', 'show', release, '--limit', '2', '-o', 'json']);
    const detail = JSON.parse(ok(page));
    expect(detail.instances.map((i: { instance: string }) => i.instance)).toEqual(['a1', 'a2']);
    expect(detail.summary.total).toBe(3);
    const rest = JSON.parse(ok(await fleet.cli(['release', 'show', release, '--after', nextCursor(page.stderr), '-o', 'json'])));
    expect(rest.instances.map((i: { instance: string }) => i.instance)).toEqual(['a3']);

    const green = ok(await fleet.cli(['release', 'show', release, '--group', 'green', '--status', 'pending']));
    expect(green).toMatch(/^Instances 1 matching: 1 pending$/m);
    expect(green).toContain('a3 (green, batch 2): pending');
    expect(green).not.toContain('a1 (blue');
  });

  it('refuses bad flags before calling, and a cursor of another listing at the controller: one line, exit 2', async () => {
    badInput(await fleet.cli(['agent', 'list', '--status', 'sleeping']), /^fleetwave: --status: 'sleeping' is not one of connected, unreachable$/m);
    badInput(await fleet.cli(['instance', 'list', 'web', '--limit', '-1']), /--limit: '-1' is not a whole number ≥ 1/);
    badInput(await fleet.cli(['release', 'show', release, '--status', 'released!']), /--status: 'released!' is not one of pending/);
    const agentCursor = nextCursor((await fleet.cli(['agent', 'list', '--limit', '1', '-o', 'json'])).stderr);
    badInput(await fleet.cli(['instance', 'list', 'web', '--after', agentCursor]), /^fleetwave: --after: '\S+' is not a cursor of this listing/);
    badInput(await fleet.cli(['release', 'show', release, '--after', agentCursor]), /is not a cursor of this listing/);
    badInput(await fleet.cli(['instance', 'list', 'nope', '--status', 'running']), /app 'nope' does not exist/);
  });
});
