// Fault: an agent is SIGKILLed mid-step; it comes back (the step finishes or is retried once) or it does not (the failure policy decides).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/fleet.js';
import { reportFault } from './report.js';
import { FaultFleet, flip } from './support.js';

describe('fault: an agent is killed (SIGKILL) mid-step', () => {
  const f = new FaultFleet('agent-kill', [
    { id: 'g1', group: 'blue' },
    { id: 'g2', group: 'blue' },
    { id: 'g3', group: 'green' },
  ]);
  const killed = new Set<string>();
  let edition = '1.0';

  // The app listens 1.5 s after it starts, past the agent's 500 ms start grace, so the health step lasts long enough to kill the agent in it.
  f.startDelayMs = 1500;

  beforeAll(() => f.start(), 120_000);
  afterAll(() => f.stop(), 60_000);

  /** Waits until `agent` runs `step` in release `id`, then kills the agent. */
  async function killAt(id: string, agent: string, step: string): Promise<void> {
    await waitFor(`${agent} to run ${step} in ${id}`, async () => {
      const detail = await f.fleet.adminClient.release(id);
      const last = detail.instances.find((i) => i.instance === agent)?.steps.at(-1);
      if (detail.release?.finishedUnixMs) throw new Error(`release ended before ${agent} reached ${step}`);
      return last?.step === step && last.status === 'running';
    }, 30_000);
    await f.fleet.agents.find((a) => a.id === agent)!.kill();
    killed.add(agent);
  }

  /** A request in flight makes the drain last its interval, long enough to kill the agent in it. */
  function holdRequest(agent: string): void {
    void fetch(`http://127.0.0.1:${f.ports[agent]}/slow?ms=5000`).then((r) => r.body?.cancel(), () => {});
  }

  /** Journal re-runs: one per command on a killed agent is the allowed retry; anything beyond is a duplicate. */
  function countRuns(): { reruns: number; duplicates: number } {
    let reruns = 0;
    let duplicates = f.controllerDuplicates();
    for (const [agent, ids] of Object.entries(f.journalReruns())) {
      for (const runs of Object.values(ids)) {
        const allowed = killed.has(agent) ? 1 : 0;
        reruns += Math.min(allowed, runs - 1);
        duplicates += Math.max(0, runs - 1 - allowed);
      }
    }
    return { reruns, duplicates };
  }

  it('finishes the step after the agent restarts: retried at most once, every instance on the edition', async () => {
    const trials = [
      { agent: 'g1', step: 'restart' },
      { agent: 'g3', step: 'health' },
      { agent: 'g2', step: 'restart' },
    ];
    let completed = 0;
    const wrong: string[] = [];
    for (const trial of trials) {
      // Given a release to the other edition
      edition = flip(edition);
      const id = await f.create({ edition });
      // When the agent is killed at the step and started again (same host, same boot)
      await killAt(id, trial.agent, trial.step);
      await f.startAgent(trial.agent);
      // Then it reports its editions on reconnect, the step finishes, and the release completes
      const detail = await f.waitEnd(id);
      if (detail.release?.status === 'Released') completed++;
      else wrong.push(`${id}: ${detail.release?.status} ${detail.release?.message}`);
      wrong.push(...(await f.settledEditions({ g1: edition, g2: edition, g3: edition })));
    }
    const { reruns, duplicates } = countRuns();
    const events = await f.eventsLost();
    reportFault({
      fault: 'agent killed mid-step, restarted',
      trials: trials.length,
      releasesCompleted: completed,
      releases: trials.length,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: reruns,
      wrongEditions: wrong.length,
      eventsLost: events.lost,
      notes: `killed at ${trials.map((t) => `${t.agent}:${t.step}`).join(', ')}; a re-run is the handler beginning again for a command the dead agent had begun`,
    });
    expect(wrong).toEqual([]);
    expect(completed).toBe(trials.length);
    expect(duplicates).toBe(0);
    expect(events.missing).toEqual([]);
  }, 240_000);

  it('fails the instance under the failure policy when the agent does not come back within the step deadline', async () => {
    const short = { drainMs: 1_500, timeouts: { downloadMs: 0, stopMs: 1_500, startMs: 1_500, healthMs: 0 } };
    const before = countRuns();
    const wrong: string[] = [];
    let completed = 0;

    // Given a release whose first batch holds g1, when g1 dies in its drain and stays away past the restart deadline
    const old = edition;
    edition = flip(edition);
    holdRequest('g1');
    const failedId = await f.create({ edition, ...short });
    await killAt(failedId, 'g1', 'drain');
    const failed = await f.waitEnd(failedId);
    // Then the first batch fails the release: g1 unreachable, g2 back on the old edition, g3 untouched
    const g1 = failed.instances.find((i) => i.instance === 'g1');
    if (failed.release?.status === 'Release failed' && g1?.status === 'unreachable') completed++;
    else wrong.push(`${failedId}: ${failed.release?.status}, g1 ${g1?.status}`);
    await f.startAgent('g1');
    wrong.push(...(await f.settledEditions({ g1: old, g2: old, g3: old })));

    // Given best effort, when g3 (batch 2) dies in its drain and stays away, then the release goes on without it
    holdRequest('g3');
    const bestEffortId = await f.create({ edition, ...short, bestEffort: true });
    await killAt(bestEffortId, 'g3', 'drain');
    const released = await f.waitEnd(bestEffortId);
    const g3 = released.instances.find((i) => i.instance === 'g3');
    if (released.release?.status === 'Released' && g3?.status === 'unreachable') completed++;
    else wrong.push(`${bestEffortId}: ${released.release?.status}, g3 ${g3?.status}`);
    await f.startAgent('g3');
    wrong.push(...(await f.settledEditions({ g1: edition, g2: edition, g3: old })));
    edition = old;

    const after = countRuns();
    const reruns = after.reruns - before.reruns;
    const duplicates = after.duplicates - before.duplicates;
    reportFault({
      fault: 'agent not back within its deadline',
      trials: 2,
      releasesCompleted: completed,
      releases: 2,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: reruns,
      wrongEditions: wrong.length,
      eventsLost: 0,
      notes: 'completed = ended as the policy says: batch 1 → Release failed, the rest back on the old edition; best effort later → Released without it; events of a host that is away are not expected',
    });
    expect(wrong).toEqual([]);
    expect(completed).toBe(2);
    expect(duplicates).toBe(0);
  }, 180_000);
});
