// Fault: nats-server stops during a release and starts again; drains fall back to their interval and no event is lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/fleet.js';
import { reportFault } from './report.js';
import { FaultFleet, flip } from './support.js';

describe('fault: nats-server goes away during a release', () => {
  const f = new FaultFleet('nats-outage', [
    { id: 'n1', group: 'blue' },
    { id: 'n2', group: 'blue' },
    { id: 'n3', group: 'green' },
  ]);

  beforeAll(() => f.start(), 120_000);
  afterAll(() => f.stop(), 60_000);

  it('completes the release, reconnects by itself, and delivers the events published while NATS was down', async () => {
    const trials = [
      { stopAt: 'quiesce', batch: 1, startWhen: 'batch 1 done' },
      { stopAt: 'create', batch: 1, startWhen: 'batch 2 running' },
    ];
    let edition = '1.0';
    let completed = 0;
    let intervalDrains = 0;
    const wrong: string[] = [];
    for (const trial of trials) {
      // Given a release, when nats-server stops at the step ('create': stopped first, so it is surely down before any
      // drain; a JetStream server takes some tens of ms to shut down, long enough for a quick drain to slip through)
      edition = flip(edition);
      if (trial.stopAt === 'create') await f.fleet.nats!.stop();
      const id = await f.create({ edition, drainMs: 1_000 });
      if (trial.stopAt !== 'create') {
        await waitFor(`a ${trial.stopAt} step`, async () => {
          const detail = await f.fleet.adminClient.release(id);
          // The first step of batch 1 past the download (quiesce lasts only until the agent answers).
          return detail.instances.some((i) => i.batch === 1 && i.steps.at(-1)?.step !== 'download' && i.steps.at(-1)?.status === 'running');
        }, 30_000);
        await f.fleet.nats!.stop();
      }
      // and stays down while instances move (their events can only be buffered)
      await waitFor(trial.startWhen, async () => {
        const detail = await f.fleet.adminClient.release(id);
        return trial.startWhen === 'batch 1 done' ? detail.batches[0]?.status === 'done' : detail.release?.currentBatch === 2;
      }, 30_000);
      await f.fleet.nats!.restart();
      // Then the release completes on every instance
      const detail = await f.waitEnd(id);
      if (detail.release?.status === 'Released') completed++;
      else wrong.push(`${id}: ${detail.release?.status} ${detail.release?.message}`);
      intervalDrains += detail.instances.flatMap((i) => i.steps).filter((s) => s.step === 'drain' && s.error.includes('interval')).length;
      wrong.push(...(await f.settledEditions({ n1: edition, n2: edition, n3: edition })));
    }
    // And once NATS is back, drains end on the agents' `drained` events again (both sides reconnected by themselves)
    edition = flip(edition);
    const after = await f.release({ edition, drainMs: 20_000 });
    const slowDrains = after.instances.flatMap((i) => i.steps).filter((s) => s.step === 'drain' && s.finishedUnixMs - s.startedUnixMs > 10_000);
    if (after.release?.status !== 'Released' || slowDrains.length > 0) wrong.push(`after the outage: ${after.release?.status}, ${slowDrains.length} drain(s) waited the interval`);
    wrong.push(...(await f.settledEditions({ n1: edition, n2: edition, n3: edition })));

    const reruns = f.journalReruns();
    const duplicates = Object.values(reruns).reduce((n, ids) => n + Object.values(ids).reduce((m, runs) => m + runs - 1, 0), 0) + f.controllerDuplicates();
    const events = await f.eventsLost();
    reportFault({
      fault: 'nats-server stopped and started',
      trials: trials.length,
      releasesCompleted: completed,
      releases: trials.length,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: 0,
      wrongEditions: wrong.length,
      eventsLost: events.lost,
      notes: `${intervalDrains} drain(s) fell back to the interval while NATS was down; events checked in JetStream after the restart`,
    });
    expect(wrong).toEqual([]);
    expect(completed).toBe(trials.length);
    expect(intervalDrains).toBeGreaterThan(0);
    expect(duplicates).toBe(0);
    expect(events.missing).toEqual([]);
  }, 240_000);
});
