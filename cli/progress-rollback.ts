// Live progress of a release in a rollback: only the rollback's own batches and steps, going back to the
// old edition. The forward lines were history before the rollback began, so they are not replayed.
import type { InstanceProgress, ReleaseDetail, StepRecord } from '../proto/gen/fleetwave/v1/admin.js';
import { formatDuration } from '../common/durations.js';
import { chain, FAILED, isRollbackStep, markOf, OK, rollbackStart, spanOf, stepError } from './progress-steps.js';

/**
 * The lines describing what changed in a rollback that began at `since`. `prev` may be a forward
 * snapshot (the watch saw the rollback begin): then `releaseLines` says so and every rollback step is new.
 */
export function renderRollbackChanges(
  prev: ReleaseDetail | undefined,
  next: ReleaseDetail,
  since: number,
  releaseLines: (prev: ReleaseDetail | undefined, next: ReleaseDetail) => string[],
): string[] {
  // A snapshot from before this rollback began is no base for its steps.
  const base = prev && rollbackStart(prev) === since ? prev : undefined;
  return [
    ...(prev ? [] : introLine(next)),
    ...instanceLines(base, next, since, true),
    ...releaseLines(prev, next),
    ...batchLine(base, next),
    ...instanceLines(base, next, since, false),
  ];
}

function introLine(next: ReleaseDetail): string[] {
  const r = next.release;
  if (!r) return [];
  const count = next.instances.filter((i) => i.rollbackBatch > 0).length;
  const batches = r.rollbackBatchCount;
  return [
    `release ${r.id}: rolling ${r.app} ${r.edition} back on ${count} instance${count === 1 ? '' : 's'} in ${batches} rollback batch${batches === 1 ? '' : 'es'}: ${r.status}`,
  ];
}

/** "rollback batch N/M started: …" when the rollback moves on to its next batch. */
function batchLine(base: ReleaseDetail | undefined, next: ReleaseDetail): string[] {
  const r = next.release;
  if (!r || r.rollbackCurrentBatch === 0 || r.rollbackCurrentBatch === base?.release?.rollbackCurrentBatch) return [];
  if (r.status !== 'Rolling back') return [];
  const members = next.instances.filter((i) => i.rollbackBatch === r.rollbackCurrentBatch).map((i) => i.instance);
  return [`rollback batch ${r.rollbackCurrentBatch}/${r.rollbackBatchCount} started: ${members.join(', ')}`];
}

function stepsOf(instance: InstanceProgress, since: number): StepRecord[] {
  return instance.steps.filter((s) => isRollbackStep(s, since));
}

/** Its rollback ended: back on the old edition, or its last rollback step failed. */
function settled(instance: InstanceProgress, steps: StepRecord[]): boolean {
  return instance.status === 'rolled back' || steps[steps.length - 1]?.status === 'failed';
}

function signature(instance: InstanceProgress, since: number): string {
  return `${instance.status}|${stepsOf(instance, since).map((s) => `${s.step}:${s.status}`).join(',')}`;
}

function instanceLines(base: ReleaseDetail | undefined, next: ReleaseDetail, since: number, ended: boolean): string[] {
  const before = new Map((base?.instances ?? []).map((i) => [i.instance, i]));
  const width = Math.max(0, ...next.instances.map((i) => i.instance.length));
  const lines: string[] = [];
  for (const instance of next.instances) {
    if (instance.rollbackBatch === 0) continue;
    const steps = stepsOf(instance, since);
    if (settled(instance, steps) !== ended) continue;
    const old = before.get(instance.instance);
    if (old && signature(old, since) === signature(instance, since)) continue;
    const line = instanceLine(instance, steps);
    if (line) lines.push(`  ${instance.instance.padEnd(width)}  ${line}`);
  }
  return lines;
}

function instanceLine(instance: InstanceProgress, steps: StepRecord[]): string | undefined {
  const last = steps[steps.length - 1];
  if (instance.status === 'rolled back') {
    const span = spanOf(steps);
    const edition = instance.edition || 'the previous edition';
    if (!steps.length) return `rolled back to ${edition}`;
    return `${chain(steps)} ${OK} back on ${edition}${span !== undefined ? ` (${formatDuration(span)})` : ''}`;
  }
  if (!last) return undefined;
  if (last.status === 'failed') return `${chain(steps)} ${FAILED} ${stepError(last.step, last.error || instance.error)}`;
  return `${chain(steps)} ${markOf(last)}`;
}
