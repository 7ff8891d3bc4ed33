// The agent is installed on hosts alone: it starts, enrols with a real controller and starts its gate host with
// better-sqlite3 (the controller's native module) absent. A resolve hook hides the module from the tsc build.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GateLink } from '../../agent/gate-link.js';
import { gateSocketPath } from '../../agent/gate-protocol.js';
import { CLI_MAIN, Fleet, freePort, repoPath } from '../harness/fleet.js';

const HIDE_SQLITE = { NODE_OPTIONS: `--import=${pathToFileURL(repoPath('test/integration/fixtures/no-better-sqlite3/register.mjs')).href}` };

/** `node dist/cli/main.js ARGS` with better-sqlite3 hidden. */
function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_MAIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...HIDE_SQLITE } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the agent without better-sqlite3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-nosqlite-'));
  const fleet = new Fleet(join(dir, 'fleet'));

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController();
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the hook hides it: the controller cannot start', () => {
    const r = cli(['controller', '--insecure', '--data-dir', join(dir, 'hidden-controller'), '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/better-sqlite3.*hidden by the test/);
  });

  it('`fleetwave agent --help` works', () => {
    const r = cli(['agent', '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('--data-dir');
  });

  it('a real agent enrols with the controller and starts its gate host', async () => {
    // Given better-sqlite3 hidden from the agent and from the gate host it starts (NODE_OPTIONS is inherited)
    const agent = await fleet.startAgent('n1', 'plain', { shop: await freePort() }, [], { env: HIDE_SQLITE });

    // Then it registers with the controller, and its gate host answers
    await fleet.adminClient.waitForAgents(['n1']);
    const link = await GateLink.connect(gateSocketPath(agent.dataDir));
    expect(link).toBeDefined();
    link!.close();
    expect(agent.proc.running).toBe(true);
  }, 60_000);
});
