// Agent self-upgrade through fleetwave (docs/agent-upgrade.md): three agents under their keepers (--self-upgrade), the
// sample app behind each gate under load, agent packages published and rolled out in batches. A broken package is
// rolled back on its first agent and stops the upgrade; a good one reaches every agent with no request lost and the
// apps' processes untouched; a controller killed mid-upgrade resumes without sending any agent its upgrade twice.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentBundle } from '../../deploy/dist/bundle.js';
import { buildEdition } from '../../examples/demo/package.js';
import type { AgentUpgrade } from '../../proto/gen/fleetwave/v1/admin.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { serviceLoad, type ServiceLoad } from '../harness/service-load.js';

const AGENTS = ['a1', 'a2', 'a3'];

/** The app's answer through the gate on `port`: the pid of the process that served it. */
async function appPid(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return String(((await res.json()) as { pid?: number }).pid);
}

describe('agent self-upgrade', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-self-upgrade-'));
  const fleet = new Fleet(join(dir, 'fleet'), join(dir, 'logs'));
  const ports: Record<string, number> = {};
  let initialVersion = '';
  let loads: ServiceLoad[] = [];
  let pidsBefore: string[] = [];

  /** A package as `agent publish` takes it: a tar.gz holding fleetwave-agent.cjs. */
  function tarball(name: string, program: string): string {
    const src = join(dir, `src-${name}`);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'fleetwave-agent.cjs'), readFileSync(program));
    const out = join(dir, `${name}.tar.gz`);
    execFileSync('tar', ['-czf', out, '-C', src, 'fleetwave-agent.cjs']);
    return out;
  }

  async function bundlePackage(version: string): Promise<string> {
    const outFile = join(dir, `fleetwave-agent-${version}.cjs`);
    await buildAgentBundle({ outFile, version });
    return tarball(version, outFile);
  }

  async function publish(file: string, version: string): Promise<void> {
    const r = await fleet.cli(['agent', 'publish', file, '--version', version]);
    expect(r.code, r.stderr).toBe(0);
  }

  async function versions(): Promise<Record<string, string>> {
    return Object.fromEntries((await fleet.adminClient.agents()).filter((a) => a.status === 'connected').map((a) => [a.id, a.version]));
  }

  async function upgradeStatus(): Promise<AgentUpgrade> {
    const r = await fleet.cli(['agent', 'upgrade-status', '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as AgentUpgrade;
  }

  /** How many times each agent ran its command of `upgrade` (the journal's `runs`: one more per start). */
  function upgradeRuns(upgrade: AgentUpgrade): Record<string, number> {
    return Object.fromEntries(
      AGENTS.map((id) => {
        const commandId = `agent-upgrade-${upgrade.id}-${id}`;
        const lines = readFileSync(join(fleet.dir, 'agents', id, 'commands.jsonl'), 'utf8').split('\n').filter(Boolean);
        const runs = lines.map((l) => JSON.parse(l) as { id: string; runs?: number }).filter((e) => e.id === commandId).map((e) => e.runs ?? 0);
        return [id, Math.max(0, ...runs)];
      }),
    );
  }

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController();
    for (const id of AGENTS) {
      ports[id] = await freePort();
      await fleet.startAgent(id, 'blue', { shop: ports[id]! }, ['--self-upgrade', '--upgrade-trial', '20s']);
    }
    await fleet.adminClient.waitForAgents(AGENTS);
    initialVersion = (await versions()).a1!;
    const pkg = (await buildEdition({ sourceDir: repoPath('examples/app'), edition: '1.0', outDir: join(dir, 'packages'), name: 'shop' })).path;
    expect((await fleet.cli(['app', 'create', 'shop', '--start', 'node server.js', '--env', 'START_DELAY_MS=0'])).code).toBe(0);
    expect((await fleet.cli(['edition', 'install', 'shop', '1.0', '--file', pkg])).code).toBe(0);
    const release = await fleet.cli(['release', 'create', 'shop', '--edition', '1.0', '--batches', '1']);
    expect(release.code, release.stderr).toBe(0);
    const detail = await fleet.adminClient.waitForRelease(release.stdout.trim().split(/\s+/).pop()!, ['Released', 'Release failed'], 40_000);
    expect(detail.release?.status).toBe('Released');
    pidsBefore = await Promise.all(AGENTS.map((id) => appPid(ports[id]!)));
    loads = AGENTS.map((id) => serviceLoad(ports[id]!, { clients: 2 }));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(loads.map((l) => l.stop()));
    await fleet.stopAll();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a package that exits at start is rolled back on its agent, and the upgrade stops failed with the reason', async () => {
    // Given a broken package (its program exits at once)
    const broken = join(dir, 'broken.cjs');
    writeFileSync(broken, `process.stderr.write('broken agent build\\n'); process.exit(1);\n`);
    await publish(tarball('0.4.0', broken), '0.4.0');

    // When it is rolled out in three batches and watched
    const r = await fleet.cli(['agent', 'upgrade', '--to', '0.4.0', '--batches', '3', '--watch']);

    // Then the watch exits 1 naming the agent and the reason, a1 is back on its kept version, the others were never sent it
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`ended failed: agent a1: rolled back to ${initialVersion.replace(/\./g, '\\.')}: version 0\\.4\\.0 exited \\(code 1\\) before it reached the controller`));
    const status = await upgradeStatus();
    expect(status.targets.map((t) => `${t.agentId}:${t.status}`)).toEqual(['a1:failed', 'a2:skipped', 'a3:skipped']);
    expect(await waitFor('a1 back on its kept version', async () => ((await versions()).a1 === initialVersion ? true : undefined), 30_000)).toBe(true);
    expect(await versions()).toEqual({ a1: initialVersion, a2: initialVersion, a3: initialVersion });
  }, 90_000);

  it('a good package reaches every agent in batches: 0 requests failed, the apps keep their processes', async () => {
    await publish(await bundlePackage('0.3.0'), '0.3.0');

    const r = await fleet.cli(['agent', 'upgrade', '--to', '0.3.0', '--batches', '3', '--watch']);

    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/to 0\.3\.0: upgraded, batch 3\/3; 3 upgraded/);
    const upgrade = await upgradeStatus();
    expect(await versions()).toEqual({ a1: '0.3.0', a2: '0.3.0', a3: '0.3.0' });
    const list = await fleet.cli(['agent', 'list']);
    expect(list.stdout.split('\n').filter((l) => /^a\d/.test(l) && l.includes('0.3.0'))).toHaveLength(3);
    expect(await Promise.all(AGENTS.map((id) => appPid(ports[id]!)))).toEqual(pidsBefore);
    for (const load of loads) expect(load.counts.failed).toEqual([]);
    for (const load of loads) expect(load.counts.refused).toBe(0);
    for (const load of loads) expect(load.counts.ok).toBeGreaterThan(0);
    expect(upgradeRuns(upgrade)).toEqual({ a1: 1, a2: 1, a3: 1 });
  }, 120_000);

  it('a controller killed mid-upgrade resumes it, and no agent is sent its upgrade twice', async () => {
    await publish(await bundlePackage('0.5.0'), '0.5.0');
    const started = await fleet.cli(['agent', 'upgrade', '--to', '0.5.0', '--batches', '3']);
    expect(started.code, started.stderr).toBe(0);

    // When the controller is killed while the first batch's agent is upgrading, and started again
    await waitFor('the first batch under way', async () => {
      const u = await upgradeStatus();
      return u.targets.some((t) => t.status === 'restarting' || t.status === 'upgraded') ? true : undefined;
    }, 30_000);
    await fleet.controller!.kill();
    await fleet.startController();

    // Then the upgrade ends upgraded, every agent reports 0.5.0, each ran its upgrade command once
    const done = await waitFor('the upgrade to end', async () => {
      const u = await upgradeStatus().catch(() => undefined);
      return u && u.status !== 'upgrading' ? u : undefined;
    }, 90_000);
    expect(done.status, done.message).toBe('upgraded');
    expect(await waitFor('every agent on 0.5.0', async () => {
      const v = await versions();
      return AGENTS.every((id) => v[id] === '0.5.0') ? v : undefined;
    }, 30_000)).toEqual({ a1: '0.5.0', a2: '0.5.0', a3: '0.5.0' });
    expect(upgradeRuns(done)).toEqual({ a1: 1, a2: 1, a3: 1 });
    expect(await Promise.all(AGENTS.map((id) => appPid(ports[id]!)))).toEqual(pidsBefore);
    for (const load of loads) expect(load.counts.failed).toEqual([]);
  }, 150_000);
});
