// What the forward and the rollback views of a release's progress share: step chains, their marks and
// spans, failure messages without repeated prefixes, and where a rollback begins.
import type { ReleaseDetail, StepRecord } from '../proto/gen/fleetwave/v1/admin.js';

export const OK = '✓';
export const FAILED = '✗';
export const RUNNING = '…';

/** Release statuses of a rollback: its lines count from the rollback's start, not the release's. */
const ROLLBACK_STATUSES: ReadonlySet<string> = new Set(['Rolling back', 'Rolled back', 'Rollback failed']);

export function chain(steps: StepRecord[]): string {
  return steps.map((s) => s.step).join(' → ');
}

/** From the first step's start to the last step's end, when both are known. */
export function spanOf(steps: StepRecord[]): number | undefined {
  const start = steps[0]?.startedUnixMs;
  const end = steps[steps.length - 1]?.finishedUnixMs;
  return start && end ? end - start : undefined;
}

/** The mark of the chain's last step. */
export function markOf(step: StepRecord): string {
  return step.status === 'running' ? RUNNING : step.status === 'failed' ? FAILED : OK;
}

/**
 * The message of a failed step, without the prefixes the layers added on the way up ("rollback failed: ",
 * "restart: restart: "): the line already names the step, as in "restart ✗ no such edition".
 */
export function stepError(step: string, error: string): string {
  const prefixes = ['rollback failed: ', 'revert failed: ', ...(step ? [`${step}: `] : [])];
  let text = error.trim();
  for (let found = true; found; ) {
    const prefix = prefixes.find((p) => text.startsWith(p));
    found = prefix !== undefined;
    if (prefix) text = text.slice(prefix.length).trim();
  }
  return text || 'failed';
}

/**
 * When the release's current rollback began (the change record of the accepted rollback, the operator's or
 * the automatic one), or undefined when the release is not in a rollback.
 */
export function rollbackStart(detail: ReleaseDetail | undefined): number | undefined {
  const r = detail?.release;
  if (!r || !ROLLBACK_STATUSES.has(r.status)) return undefined;
  const started = [...detail.changes].reverse().find((c) => c.action === 'rollback' && !c.result.startsWith('refused'));
  return started ? Number(started.atUnixMs) : 0;
}

/**
 * A step of the rollback that began at `since`: it began once the rollback had (forward steps all began
 * before; an earlier rollback attempt's steps too), and, where the controller records each step's pipeline
 * in `phase`, it says rollback.
 */
export function isRollbackStep(step: StepRecord, since: number): boolean {
  const phase = (step as { phase?: string }).phase;
  return (!phase || phase === 'rollback') && Number(step.startedUnixMs) >= since;
}

/** True when a rollback would move something: some instance is off the edition it ran before. */
export function canRollBack(detail: ReleaseDetail): boolean {
  return detail.instances.some((i) => i.moved !== '' && i.moved !== 'none');
}
