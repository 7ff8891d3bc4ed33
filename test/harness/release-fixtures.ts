// Fixture factories for the release views' unit tests (cli/progress*.test.ts): shop 2.0 released to group blue,
// clock at T0 + offsets.
import type { Batch, InstanceProgress, ReleaseDetail, StepRecord } from '../../proto/gen/fleetwave/v1/admin.js';
import { ReleaseDetail as ReleaseDetailFns } from '../../proto/gen/fleetwave/v1/admin.js';

export const T0 = 1_700_000_000_000;

export function step(name: string, status: string, startOffset: number, endOffset = 0, fields: Partial<StepRecord> = {}): StepRecord {
  return { step: name, phase: '', status, startedUnixMs: T0 + startOffset, finishedUnixMs: endOffset ? T0 + endOffset : 0, error: '', ...fields };
}

export function instance(id: string, batch: number, fields: Partial<InstanceProgress> = {}): InstanceProgress {
  return { instance: id, group: 'blue', batch, status: 'pending', step: '', edition: '1.0', error: '', steps: [], rollbackBatch: 0, moved: 'none', updateOrder: '', ...fields };
}

export function batch(number: number, status: string, instances: string[], fields: Partial<Batch> = {}): Batch {
  return { number, group: 'blue', status, instances, startedUnixMs: 0, finishedUnixMs: 0, checkpoint: '', checkpointBy: '', checkpointComment: '', instanceCount: instances.length, ...fields };
}

/** Release r-1 (`fields` overrides the release's fields, e.g. its id or batchCount). */
export function detail(status: string, batches: Batch[], instances: InstanceProgress[], fields: Record<string, unknown> = {}): ReleaseDetail {
  return ReleaseDetailFns.fromPartial({
    release: { id: 'r-1', app: 'shop', edition: '2.0', group: 'all', status, batchCount: batches.length, createdUnixMs: T0, ...fields },
    batches,
    instances,
  });
}
