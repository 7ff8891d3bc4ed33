// The fault suites' "events lost" count: what a release's instance must have published, matched against the stream.
import { describe, expect, it } from 'vitest';
import { ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';
import { missingEvents, type InstanceEvent } from './support.js';

/** A release of 2.0 created at t=0 and finished at t=4000 whose instance k1 went through the upgrade pipeline. */
const detail = ReleaseDetail.fromPartial({
  release: { id: 'r-1', edition: '2.0', createdUnixMs: 0, finishedUnixMs: 4_000 },
  instances: [{ instance: 'k1', status: 'released', steps: ['download', 'quiesce', 'drain', 'restart', 'health'].map((step) => ({ step, status: 'ok' })) }],
});
const at = (time: number, type: string, edition?: string): InstanceEvent => ({ time, type, instance: 'k1', edition });

describe('missingEvents', () => {
  it('finds none missing when a redelivered quiesce.started reaches the stream after the drained of the same millisecond', () => {
    // Stream order as seen after a controller kill: the next release's quiesce ends the window.
    const events = [at(48, 'drained'), at(1_705, 'stopped', '1.0'), at(1_716, 'started', '2.0'), at(2_585, 'healthy', '2.0'), at(48, 'quiesce.started'), at(3_998, 'drained')];
    expect(missingEvents(detail, events)).toEqual([]);
  });

  it('names what is missing, in pipeline order', () => {
    const events = [at(10, 'quiesce.started'), at(11, 'drained'), at(900, 'started', '2.0')];
    expect(missingEvents(detail, events)).toEqual(['r-1 k1: healthy(2.0)']);
    expect(missingEvents(detail, [at(10, 'quiesce.started'), at(11, 'drained'), at(900, 'started', '1.0')])).toEqual(['r-1 k1: started(2.0)', 'r-1 k1: healthy(2.0)']);
  });
});
