// `fleetwave agent upgrade-cancel` against a real controller (docs/agent-upgrade.md): the batch not yet sent is
// skipped, the agent already sent its command finishes on its own (here: at its deadline, as it is down), the cancel
// is in the history with its actor and comment, an ended or unknown upgrade is refused, and a restart keeps it cancelled.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentUpgrade, ChangeRecord } from '../../proto/gen/fleetwave/v1/admin.js';
import { Fleet, waitFor } from '../harness/fleet.js';

describe('agent upgrade-cancel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-upgrade-cancel-'));
  const fleet = new Fleet(join(dir, 'fleet'), join(dir, 'logs'));

  async function upgradeStatus(): Promise<AgentUpgrade> {
    const r = await fleet.cli(['agent', 'upgrade-status', '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as AgentUpgrade;
  }

  const targets = (u: AgentUpgrade) => u.targets.map((t) => `${t.agentId}:${t.status}`);

  beforeAll(async () => {
    await fleet.startNats();
    await fleet.startController();
    for (const id of ['a1', 'a2']) await fleet.startAgent(id, 'blue', {});
    await fleet.adminClient.waitForAgents(['a1', 'a2']);
    // A package the controller accepts; no agent ever runs it (a1 is down when it is sent, a2 is skipped).
    const src = join(dir, 'pkg');
    mkdirSync(src);
    writeFileSync(join(src, 'fleetwave-agent.cjs'), 'process.exit(1);\n');
    execFileSync('tar', ['-czf', join(dir, 'agent.tar.gz'), '-C', src, 'fleetwave-agent.cjs']);
    const published = await fleet.cli(['agent', 'publish', join(dir, 'agent.tar.gz'), '--version', '0.9.0']);
    expect(published.code, published.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('stops the upgrade mid-batch; the agent in flight finishes on its own; a restart keeps it cancelled', async () => {
    // Given a1 (batch 1) down, so its command waits in the outbox, and a2 in batch 2 (the deadline leaves room for the
    // CLI calls below on a busy machine)
    await fleet.agents.find((a) => a.id === 'a1')!.stop();
    const started = await fleet.cli(['agent', 'upgrade', '--to', '0.9.0', '--batches', '2', '--timeout', '10s']);
    expect(started.code, started.stderr).toBe(0);
    const id = (await upgradeStatus()).id;
    expect(targets(await upgradeStatus())).toEqual(['a1:sent', 'a2:pending']);

    // When an operator cancels it
    const r = await fleet.cli(['agent', 'upgrade-cancel', '--comment', 'wrong build']);

    // Then it is cancelled, a2 skipped, a1 still in flight, and the history has who and why
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${id} to 0\\.9\\.0: cancelled \\(cancelled by \\S+: wrong build\\), batch 1/2; 1 sent, 1 skipped\\n1 agent\\(s\\) already sent`));
    expect(targets(await upgradeStatus())).toEqual(['a1:sent', 'a2:skipped']);
    const history = JSON.parse((await fleet.cli(['history', 'fleetwave-agent', '-o', 'json'])).stdout) as ChangeRecord[];
    expect(history.at(-1)).toMatchObject({ action: 'agent-upgrade-cancel', releaseId: id, comment: 'wrong build', result: 'ok' });
    expect(history.at(-1)!.actor).not.toBe('');
    // and a watch of it exits 1 with one line naming the cancel
    const watch = await fleet.cli(['agent', 'upgrade-status', id, '--watch']);
    expect(watch.code).toBe(1);
    expect(watch.stderr.trim()).toMatch(new RegExp(`^fleetwave: agent upgrade ${id} ended cancelled: cancelled by \\S+: wrong build$`));

    // And a second cancel is refused (1), an unknown id is bad input (2), each in one line
    const again = await fleet.cli(['agent', 'upgrade-cancel', id]);
    expect(again).toMatchObject({ code: 1, stderr: `fleetwave: agent upgrade ${id} already ended cancelled; nothing to cancel\n` });
    const unknown = await fleet.cli(['agent', 'upgrade-cancel', 'u-nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);

    // When the controller restarts, the upgrade is still cancelled and a1's deadline still fails its target
    await fleet.controller!.kill();
    await fleet.startController();
    expect((await upgradeStatus()).status).toBe('cancelled');
    const done = await waitFor('a1 to fail at its deadline', async () => {
      const u = await upgradeStatus().catch(() => undefined);
      return u?.targets[0]?.status === 'failed' ? u : undefined;
    }, 40_000);
    expect(done).toMatchObject({ status: 'cancelled', message: expect.stringMatching(/^cancelled by \S+: wrong build$/) });
    expect(targets(done)).toEqual(['a1:failed', 'a2:skipped']);
    // a2 was never sent the package.
    const journal = join(fleet.dir, 'agents', 'a2', 'commands.jsonl');
    expect(existsSync(journal) ? readFileSync(journal, 'utf8') : '').not.toContain('agent-upgrade-');
  }, 90_000);
});
