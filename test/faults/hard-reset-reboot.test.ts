// Fault: a hard reset whose hook reboots the host (the agent process dies and comes back with a new boot id).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/fleet.js';
import { reportFault } from './report.js';
import { FaultFleet, flip } from './support.js';

describe('fault: a hard reset reboots the host', () => {
  const f = new FaultFleet('hard-reset', [
    { id: 'h1', group: 'blue' },
    { id: 'h2', group: 'green' },
  ]);
  // The hook records the reboot, then takes the agent down as a reboot would ($PPID is the agent running the hook).
  const hook = `echo "$FLEETWAVE_EDITION" >> ${join(f.dir, 'reboots')}-$FLEETWAVE_AGENT_ID; kill -9 $PPID`;
  for (const plan of f.plans) plan.args = ['--reset-hook', hook];
  let boots = 0;

  beforeAll(() => f.start(), 120_000);
  afterAll(() => f.stop(), 60_000);

  function hookRuns(agent: string): string[] {
    try {
      return readFileSync(`${join(f.dir, 'reboots')}-${agent}`, 'utf8').trim().split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  it('resumes the journaled step after the reboot and the release goes on', async () => {
    const trials = 2;
    let edition = '1.0';
    let completed = 0;
    const wrong: string[] = [];
    for (let trial = 0; trial < trials; trial++) {
      // Given a hard-reset release, when each host reboots in its reset, it comes back with a new boot id
      edition = flip(edition);
      const id = await f.create({ edition, reset: 'hard' });
      const rebooted = new Set<string>();
      await waitFor(`release ${id} to end, restarting rebooted hosts`, async () => {
        for (const agent of f.fleet.agents) {
          if (agent.proc.running || rebooted.has(agent.id)) continue;
          rebooted.add(agent.id);
          await f.startAgent(agent.id, ['--boot-id', `boot-${++boots}`]);
        }
        return (await f.fleet.adminClient.release(id)).release?.finishedUnixMs;
      }, 90_000);
      // Then the release completes, each host rebooted once, and runs the new edition under its new boot id
      const detail = await f.waitEnd(id);
      if (detail.release?.status === 'Released' && rebooted.size === 2) completed++;
      else wrong.push(`${id}: ${detail.release?.status} ${detail.release?.message}; rebooted ${[...rebooted].join(',')}`);
      wrong.push(...(await f.settledEditions({ h1: edition, h2: edition })));
      const agents = await f.fleet.adminClient.agents();
      for (const agent of agents) if (!agent.bootId.startsWith('boot-')) wrong.push(`${agent.id} still reports boot ${agent.bootId}`);
    }
    // The hook ran once per host and release; the reset command began twice (before and after the reboot), never more.
    const extraHookRuns = ['h1', 'h2'].reduce((n, agent) => n + Math.max(0, hookRuns(agent).length - trials), 0);
    let resumed = 0;
    let duplicates = extraHookRuns + f.controllerDuplicates();
    for (const ids of Object.values(f.journalReruns())) {
      for (const runs of Object.values(ids)) {
        resumed += Math.min(1, runs - 1);
        duplicates += Math.max(0, runs - 2);
      }
    }
    const events = await f.eventsLost();
    reportFault({
      fault: 'hard reset reboots the host',
      trials,
      releasesCompleted: completed,
      releases: trials,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: resumed,
      wrongEditions: wrong.length,
      eventsLost: events.lost,
      notes: `${boots} reboots; the hook ran ${hookRuns('h1').length + hookRuns('h2').length} times; a re-run here is the journaled reset resumed after the reboot (the hook is not run again)`,
    });
    expect(wrong).toEqual([]);
    expect(completed).toBe(trials);
    expect(hookRuns('h1')).toHaveLength(trials);
    expect(hookRuns('h2')).toHaveLength(trials);
    expect(duplicates).toBe(0);
    expect(events.missing).toEqual([]);
  }, 240_000);
});
