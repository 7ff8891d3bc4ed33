// Fault: the agent's stream to the controller is cut (port blocked, or the connection reset) past the heartbeat timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/fleet.js';
import { reportFault } from './report.js';
import { FaultFleet, flip } from './support.js';
import { TcpProxy } from './tcp-proxy.js';

describe('fault: the agent stream is cut', () => {
  let proxy: TcpProxy;
  const f = new FaultFleet('stream-cut', [
    { id: 'c1', group: 'blue' },
    { id: 'c2', group: 'blue' },
    { id: 'c3', group: 'green' },
  ]);

  beforeAll(async () => {
    // c2 reaches the controller only through a proxy the test can block or reset
    proxy = new TcpProxy(() => {
      const [host, port] = f.fleet.controller!.grpcAddress.split(':');
      return { host: host!, port: Number(port) };
    });
    f.plans[1]!.args = ['--controller', `127.0.0.1:${await proxy.listen()}`];
    await f.start();
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await f.stop();
  }, 60_000);

  async function status(agent: string): Promise<string | undefined> {
    return (await f.fleet.adminClient.agents()).find((a) => a.id === agent)?.status;
  }

  it('reconnects and resyncs after the cut; no command runs twice; the release completes', async () => {
    const trials = [
      { cut: 'block until the agent redials', step: 'restart' },
      { cut: 'block past the heartbeat timeout', step: 'restart' },
      { cut: 'reset', step: 'restart' },
    ];
    let edition = '1.0';
    let completed = 0;
    const wrong: string[] = [];
    for (const trial of trials) {
      // Given a release, when c2 reaches the step
      edition = flip(edition);
      const id = await f.create({ edition, drainMs: 500 });
      await waitFor(`c2 to run ${trial.step}`, async () => {
        const last = (await f.fleet.adminClient.release(id)).instances.find((i) => i.instance === 'c2')?.steps.at(-1);
        return last?.step === trial.step && last.status === 'running';
      }, 30_000);
      // and its stream is cut
      if (trial.cut === 'reset') {
        proxy.reset();
      } else {
        proxy.block();
        await waitFor('the controller to see c2 unreachable', async () => (await status('c2')) === 'unreachable', 20_000);
        // The agent notices a silent stream by itself (keepalive) and dials again.
        if (trial.cut.includes('redials')) await waitFor('c2 to dial again', () => proxy.heldConnections > 0, 30_000);
        proxy.unblock();
      }
      // Then c2 reconnects, the controller re-sends what has no result, and the release completes
      await waitFor('c2 to reconnect', async () => (await status('c2')) === 'connected', 30_000);
      const detail = await f.waitEnd(id);
      if (detail.release?.status === 'Released') completed++;
      else wrong.push(`${id}: ${detail.release?.status} ${detail.release?.message}`);
      wrong.push(...(await f.settledEditions({ c1: edition, c2: edition, c3: edition })));
    }
    const reruns = f.journalReruns();
    const duplicates = Object.values(reruns).reduce((n, ids) => n + Object.values(ids).reduce((m, runs) => m + runs - 1, 0), 0) + f.controllerDuplicates();
    const events = await f.eventsLost();
    reportFault({
      fault: 'stream cut past the heartbeat timeout',
      trials: trials.length,
      releasesCompleted: completed,
      releases: trials.length,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: 0,
      wrongEditions: wrong.length,
      eventsLost: events.lost,
      notes: trials.map((t) => `${t.cut} at ${t.step}`).join('; '),
    });
    expect(wrong).toEqual([]);
    expect(completed).toBe(trials.length);
    expect(duplicates).toBe(0);
    expect(events.missing).toEqual([]);
  }, 240_000);
});
