// Rollback: the instances a release moved go back to the edition they ran before, newest batch first.
//
//   Rolling back ─▶ rollback batch 1 … N (no checkpoint, no wait) ─▶ Rolled back | Rollback failed
//   per instance:  status rolling back ─▶ rolled back | failed | unreachable; its steps are reported with phase rollback
//                  quiesced only:  health (the old edition still runs; healthy lets traffic in again)
//                  switched:       [download, only if the agent no longer keeps it] ─▶ quiesce ─▶ drain
//                                  ─▶ restart | hard-reset on the old edition ─▶ health   (stop when it ran none)
//                                  start-first soft reset: [download] ─▶ restart on the old edition ─▶ health
import { BadInputError, ConflictError } from '../../common/errors.js';
import type { ReleaseInstanceRecord, StepName } from '../domain/records.js';
import { keeps, needsRevert, rollbackEnded, settleRunningStep } from './instance-steps.js';
import type { Pass } from './pass.js';
import { splitEvenly } from '../domain/planner.js';
import { routersAtRollback } from './router-gates.js';
import { startsFirst } from './update-order.js';

/** Statuses a rollback may start from. */
const ROLLBACK_FROM = ['Releasing', 'Suspending', 'Suspended', 'Released', 'Release failed', 'Rollback failed'];

/**
 * Plans the rollback and moves the release to Rolling back. `batches` 0: one rollback batch per release batch
 * that moved an instance; otherwise the moved instances, newest batch first, split into that many batches.
 */
export function startRollback(p: Pass, batches: number, message: string): string {
  const r = p.release;
  if (!ROLLBACK_FROM.includes(r.status)) throw new ConflictError(`release ${r.id} is ${r.status}; cannot roll it back`);
  if (p.s.instances.some((i) => needsRevert(p, i))) {
    throw new ConflictError(`release ${r.id} is putting its first batch back on the old edition; roll back once that ends`);
  }
  const targets = p.s.instances
    .filter((i) => i.moved !== 'none')
    .sort((a, b) => b.batch - a.batch || a.instance.localeCompare(b.instance));
  // Nothing left its old edition (a first-batch failure already put its batch back): a rollback would only
  // relabel the release, so it is refused and the release stays as it is.
  if (targets.length === 0) throw new ConflictError(`nothing to roll back: ${nothingMovedReason(p)}`);
  if (batches > 0 && batches > targets.length) {
    throw new BadInputError(`--batches ${batches} for a rollback of ${targets.length} instance(s)`);
  }
  const plan = batches > 0 ? splitEvenly(targets.map((t) => t.instance), batches) : byReleaseBatch(targets);
  const planned = new Map(plan.flatMap((part, k) => part.map((instance) => [instance, k + 1] as const)));
  p.touchAll();
  for (const i of p.s.instances) {
    i.rollbackBatch = planned.get(i.instance) ?? 0;
    if (i.rollbackBatch > 0 && i.phase === 'rollback-ended') i.phase = '';
    // A pre-staging download of an instance the rollback leaves alone is not needed any more.
    if (i.rollbackBatch === 0 && i.stepState === 'running') {
      if (i.commandId) p.abandon(i.commandId, 'release rolled back');
      p.finishStep(i, 'failed', 'stopped by the rollback');
    }
  }
  for (const batch of p.s.batches) {
    if (batch.status === 'pending' || batch.status === 'waiting' || batch.status === 'running') p.setBatchStatus(batch, 'failed');
  }
  r.stopReason = null;
  r.revert = false;
  r.nextBatchAt = null;
  r.waitingFor = '';
  r.rollbackBatches = plan.length;
  r.rollbackCurrent = 0;
  routersAtRollback(p, false);
  p.setReleaseStatus('Rolling back', message);
  return `rolling back ${targets.length} instance(s) in ${plan.length} batch(es)`;
}

/** Why no instance of the release is off its old edition, in the operator's words. */
function nothingMovedReason(p: Pass): string {
  const r = p.release;
  const reverted = p.s.instances.some((i) => i.phase === 'revert');
  const active = r.status === 'Releasing' || r.status === 'Suspending' || r.status === 'Suspended';
  return (
    `release ${r.id} moved no instance off its previous edition` +
    (reverted ? ' (its failed first batch was already put back)' : '') +
    (active ? `; to stop it: fleetwave release cancel ${r.id}` : '')
  );
}

function byReleaseBatch(targets: ReleaseInstanceRecord[]): string[][] {
  const parts = new Map<number, string[]>();
  for (const t of targets) {
    const part = parts.get(t.batch);
    if (part) part.push(t.instance);
    else parts.set(t.batch, [t.instance]);
  }
  return [...parts.values()];
}

/** One round of a release in Rolling back: settle steps, move the current rollback batch, finish. */
export function rollbackRound(p: Pass): void {
  const r = p.release;
  for (const i of p.s.instances) {
    if (i.stepState === 'running') {
      // A forward drain is cut short: the instance goes back anyway.
      if (i.step === 'drain' && i.phase !== 'rollback') p.finishStep(i, 'ok', 'cut short by the rollback');
      else settleRunningStep(p, i);
      if (i.stepState === 'running') continue;
    }
    if (i.rollbackBatch === 0 || i.rollbackBatch !== r.rollbackCurrent) continue;
    if (i.phase === 'rollback') continueRollback(p, i);
    else if (i.phase !== 'rollback-ended' && rollbackSlot(p)) beginRollback(p, i);
  }
  const current = p.s.instances.filter((i) => i.rollbackBatch === r.rollbackCurrent);
  if (r.rollbackCurrent > 0 && current.some((i) => i.phase !== 'rollback-ended')) return;
  // The next rollback batch starts at once: a rollback skips checkpoints and waits.
  if (r.rollbackCurrent < r.rollbackBatches) {
    r.rollbackCurrent++;
    r.waitingFor = '';
    p.touch();
    return;
  }
  if (p.s.instances.some((i) => i.stepState === 'running')) return;
  const failed = p.s.instances.filter((i) => i.rollbackBatch > 0 && i.status !== 'rolled back');
  routersAtRollback(p, true);
  const first = failed[0];
  if (first) return p.setReleaseStatus('Rollback failed', `rollback failed on ${failed.length} instance(s): ${first.instance}: ${first.error}`);
  const moved = p.s.instances.filter((i) => i.rollbackBatch > 0).length;
  p.setReleaseStatus('Rolled back', moved ? `${moved} instance(s) back on their previous edition` : 'no instance had moved');
}

/** Max-unavailable during a rollback counts the instances mid-rollback (failed ones would block it forever). */
function rollbackSlot(p: Pass): boolean {
  const limit = p.release.spec.maxUnavailable;
  if (limit <= 0) return true;
  return p.s.instances.filter((i) => i.phase === 'rollback').length + p.s.elsewhere.busy < limit;
}

function beginRollback(p: Pass, i: ReleaseInstanceRecord): void {
  i.phase = 'rollback';
  p.touch(i);
  // Its status says where it is going (no more `released` while it goes back); its error keeps the forward failure.
  // The forward pipeline's last step is history now: the rollback's own steps follow.
  i.step = '';
  i.stepState = '';
  p.setInstanceStatus(i, 'rolling back');
  if (i.moved === 'quiesced') return p.beginStep(i, 'health');
  const from = i.fromEdition ?? '';
  if (from && !keeps(p, i.instance, from)) return p.beginStep(i, 'download', from);
  beginGoingBack(p, i);
}

/** Start-first soft resets go straight to the restart (the agent switches and drains); the others quiesce first. */
function beginGoingBack(p: Pass, i: ReleaseInstanceRecord): void {
  const from = i.fromEdition ?? '';
  if (from && p.release.spec.reset === 'soft' && startsFirst(p)) return p.beginStep(i, 'restart', from);
  p.beginStep(i, 'quiesce');
}

function continueRollback(p: Pass, i: ReleaseInstanceRecord): void {
  if (i.stepState !== 'done') return;
  const from = i.fromEdition ?? '';
  const reset: StepName = p.release.spec.reset === 'hard' ? 'hard-reset' : 'restart';
  switch (i.step) {
    case 'download':
      return beginGoingBack(p, i);
    case 'quiesce':
      return p.beginStep(i, 'drain');
    case 'drain':
      return from ? p.beginStep(i, reset, from) : p.beginStep(i, 'stop');
    case 'restart':
    case 'hard-reset':
      return p.beginStep(i, 'health');
    default:
      return rollbackEnded(p, i, '', false);
  }
}
