// Fault: during releases a NATS client forges instance events in every way the controller alone must catch (NATS
// here lets anyone in, the controller runs --insecure, the agents sign): none may reach SSE or the JetStream stream,
// and none may end the victim's drain. NATS permissions, which stop the rest, are in test/integration/forged-events.test.ts.
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_KEY_FILE } from '../../agent/event-key.js';
import { agentSource, ingestSubject, instanceEvent, releaseEvent, SIGNATURE_HEADER, signedBytes } from '../../common/events.js';
import { waitFor } from '../harness/fleet.js';
import { readSse, readStream, rejectedCount } from '../integration/forged-support.js';
import { reportFault } from './report.js';
import { APP, FaultFleet, flip } from './support.js';

const TRIALS = 3;
const encoder = new TextEncoder();

/** Each way of lying, as (subject, payload, signature?): all name the victim v1, all are marked `forged`. */
function forgeries(n: number, forgerKey: ReturnType<typeof createPrivateKey>): Array<{ kind: string; subject: string; payload: Uint8Array; signature?: string }> {
  const drained = (about: string, source = agentSource(about)) => {
    const { event } = instanceEvent(source, APP, about, 'drained', { inFlight: 0, forged: true });
    return encoder.encode(JSON.stringify({ ...event, id: `forged-${n}-${about}-${source}` }));
  };
  const signedBy = (subject: string, payload: Uint8Array) => sign(null, signedBytes(subject, payload), forgerKey).toString('base64');
  const victim = ingestSubject(APP, 'v1');
  const release = releaseEvent('fleetwave/controller', APP, 'r-forged', 'status.changed', { to: 'Released', forged: true }).event;
  return [
    { kind: "on the forger's subject", subject: ingestSubject(APP, 'f2'), payload: drained('v1') },
    { kind: "on the victim's subject, unsigned", subject: victim, payload: drained('v1') },
    { kind: "on the victim's subject, signed by the forger", subject: victim, payload: drained('v1'), signature: signedBy(victim, drained('v1')) },
    { kind: 'a controller event', subject: victim, payload: encoder.encode(JSON.stringify({ ...release, id: `forged-${n}-release` })) },
    { kind: 'not a CloudEvent', subject: victim, payload: encoder.encode(JSON.stringify({ forged: true, html: '<script>alert(1)</script>' })) },
    { kind: 'an unknown agent', subject: ingestSubject(APP, 'ghost'), payload: drained('ghost') },
    { kind: 'another source', subject: victim, payload: drained('v1', 'fleetwave/controller') },
  ];
}

describe('fault: forged instance events during releases', () => {
  const f = new FaultFleet('forged-events', [
    { id: 'v1', group: 'blue' },
    { id: 'f2', group: 'green' },
  ]);
  let forger: NatsConnection;
  let sse: ReturnType<typeof readSse>;

  beforeAll(async () => {
    await f.start();
    forger = await connect({ servers: f.fleet.nats!.url });
    sse = readSse(`${f.fleet.controller!.httpUrl}/events`);
  }, 120_000);
  afterAll(async () => {
    sse?.close();
    await forger?.close();
    await f.stop();
  }, 60_000);

  it('accepts none of them: no forged event on SSE or in the stream, no drain cut short, every release completes', async () => {
    const forgerKey = createPrivateKey(readFileSync(join(f.agentDir('f2'), EVENT_KEY_FILE)));
    const httpUrl = f.fleet.controller!.httpUrl;
    let sent = 0;
    let completed = 0;
    let cutShort = 0;
    const wrong: string[] = [];
    let edition = '1.0';
    for (let trial = 0; trial < TRIALS; trial++) {
      // Given a slow request in flight on v1, and a release of v1 with a drain long enough to wait for it
      edition = flip(edition);
      const slow = fetch(`http://127.0.0.1:${f.ports.v1}/slow?ms=3000`).then(() => Date.now(), () => 0);
      const id = await f.create({ edition, group: 'blue', drainMs: 20_000 });
      // When forged events pour in while v1 drains, until the slow request is answered
      await waitFor('v1 draining', async () => (await f.fleet.adminClient.release(id)).instances[0]?.steps.some((s) => s.step === 'drain'), 30_000);
      let answered = 0;
      void slow.then((at) => (answered = at || Date.now()));
      while (!answered) {
        for (const forged of forgeries(sent, forgerKey)) {
          const h = headers();
          if (forged.signature) h.set(SIGNATURE_HEADER, forged.signature);
          forger.publish(forged.subject, forged.payload, { headers: h });
          sent++;
        }
        // One round trip to the server between bursts paces the forger without a fixed wait.
        await forger.flush();
      }
      // Then the release completes, and v1's drain lasted until the request was answered
      const detail = await f.waitEnd(id);
      if (detail.release?.status === 'Released') completed++;
      else wrong.push(`${id}: ${detail.release?.status} ${detail.release?.message}`);
      const drain = detail.instances[0]?.steps.find((s) => s.step === 'drain');
      if (drain && drain.finishedUnixMs < answered - 50) cutShort++;
      wrong.push(...(await f.settledEditions({ v1: edition })));
    }
    // Every forgery reached the controller and was refused there (or, were it fooled, shows on SSE)
    await waitFor('every forgery refused', async () => sse.raw().includes('forged') || (await rejectedCount(httpUrl)) >= sent, 30_000);
    const onSse = sse.events().filter((e) => JSON.stringify(e).includes('forged')).length + (sse.raw().includes('<script>') ? 1 : 0);
    const watcher = await connect({ servers: f.fleet.nats!.url });
    const inStream = (await readStream(watcher).finally(() => watcher.close())).filter((m) => /forged|<script>/.test(m.text)).length;
    const accepted = onSse + inStream + cutShort;
    const reruns = f.journalReruns();
    const duplicates = Object.values(reruns).reduce((n, ids) => n + Object.values(ids).reduce((m, runs) => m + runs - 1, 0), 0) + f.controllerDuplicates();
    const events = await f.eventsLost();
    reportFault({
      fault: 'forged events',
      trials: sent,
      releasesCompleted: completed,
      releases: TRIALS,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: 0,
      wrongEditions: wrong.length,
      eventsLost: events.lost,
      accepted,
      notes: `${sent} forgeries of 7 kinds during ${TRIALS} drains on an open NATS; accepted = on SSE (${onSse}) + in the stream (${inStream}) + drains cut short (${cutShort})`,
    });
    expect(wrong).toEqual([]);
    expect(accepted).toBe(0);
    expect(completed).toBe(TRIALS);
    expect(duplicates).toBe(0);
    expect(events.missing).toEqual([]);
  }, 240_000);
});
