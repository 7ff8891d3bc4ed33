// Operator actions on a release, applied to the pass before it reconciles (so both land in one transaction).
//
// Precedence: actions are applied one at a time, each in its own transaction, so none is lost; one that no
// longer fits (approve after a cancel, resume after a rollback) is refused with the reason. Cancel and
// rollback override pause, approve, continue and resume: they are accepted in every status those leave.
import { BadInputError, ConflictError } from '../../common/errors.js';
import type { Pass } from './pass.js';
import { startRollback } from './rollback.js';

export const RELEASE_ACTIONS = ['start', 'pause', 'resume', 'continue', 'approve', 'reject', 'trigger', 'retry', 'rollback', 'cancel'] as const;
export type ReleaseAction = (typeof RELEASE_ACTIONS)[number];

export interface ActionRequest {
  action: string;
  actor: string;
  comment: string;
  /** rollback: number of rollback batches (0: one per release batch that moved an instance). */
  batches?: number;
}

/** Applies the action and records it; returns the one-line result written to the change record. */
export function applyAction(p: Pass, req: ActionRequest): string {
  const result = run(p, req);
  p.recordChange({ actor: req.actor, action: req.action, comment: req.comment, result });
  return result;
}

function run(p: Pass, req: ActionRequest): string {
  const r = p.release;
  switch (req.action as ReleaseAction) {
    case 'start':
      if (r.status !== 'To release') throw new ConflictError(`release ${r.id} is ${r.status}; only a release in 'To release' can start`);
      r.waitingFor = '';
      p.setReleaseStatus('Releasing', '');
      return 'started';
    case 'cancel':
      return cancel(p, req.actor);
    case 'pause':
      requireStatus(p, 'pause', ['Releasing']);
      p.setReleaseStatus('Suspending', `pause requested by ${req.actor}`);
      return 'pausing after the batch in progress';
    case 'resume':
      requireStatus(p, 'resume', ['Suspending', 'Suspended']);
      r.waitingFor = '';
      p.setReleaseStatus('Releasing', '');
      return 'resumed';
    case 'continue':
      return passGate(p, 'continue', req);
    case 'approve':
      return passGate(p, 'approval', req);
    case 'trigger':
      return passGate(p, 'trigger', req);
    case 'reject':
      return reject(p, req);
    case 'retry':
      return retry(p);
    case 'rollback':
      return startRollback(p, req.batches ?? 0, `rollback requested by ${req.actor}`);
    default:
      throw new BadInputError(`unknown release action '${req.action}' (known: ${RELEASE_ACTIONS.join(', ')})`);
  }
}

function requireStatus(p: Pass, action: string, allowed: string[]): void {
  const r = p.release;
  if (r.stopReason !== null) throw new ConflictError(`release ${r.id} is stopping (${r.stopReason}); cannot ${action}`);
  if (!allowed.includes(r.status)) throw new ConflictError(`release ${r.id} is ${r.status}; cannot ${action} it`);
}

function cancel(p: Pass, actor: string): string {
  const r = p.release;
  const message = `cancelled by ${actor}`;
  if (r.status === 'To release') {
    r.waitingFor = '';
    p.setReleaseStatus('Release failed', message);
    return 'cancelled before start';
  }
  requireStatus(p, 'cancel', ['Releasing', 'Suspending', 'Suspended']);
  // Instances in progress finish their pipeline (none is left quiesced); no new batch or instance starts.
  r.stopReason = 'cancelled';
  r.message = message;
  r.nextBatchAt = null;
  p.touch();
  return 'cancelling: instances in progress finish, no new batch starts';
}

/** The batch waiting at a gate of this kind (an approval also passes a manual continue of the same batch). */
function waitingBatch(p: Pass, gate: string) {
  const r = p.release;
  const batch = p.s.batches.find((b) => b.status === 'waiting');
  if (r.stopReason !== null || (r.status !== 'Releasing' && r.status !== 'Suspended' && r.status !== 'Suspending') || !batch) {
    throw new ConflictError(`release ${r.id} is not waiting for ${gate === 'approval' ? 'an approval' : `a ${gate}`}`);
  }
  if (batch.checkpoint !== gate) throw new ConflictError(`release ${r.id} waits for ${batch.checkpoint} before batch ${batch.number}, not ${gate}`);
  return batch;
}

function passGate(p: Pass, gate: 'approval' | 'trigger' | 'continue', req: ActionRequest): string {
  const batch = waitingBatch(p, gate);
  batch.cleared = true;
  batch.checkpointBy = req.actor;
  batch.checkpointComment = req.comment;
  p.touch();
  return `${gate} given for batch ${batch.number}`;
}

function reject(p: Pass, req: ActionRequest): string {
  const batch = waitingBatch(p, 'approval');
  const r = p.release;
  batch.checkpointBy = req.actor;
  batch.checkpointComment = req.comment;
  p.setBatchStatus(batch, 'failed');
  r.stopReason = 'rejected';
  r.message = `batch ${batch.number} rejected by ${req.actor}${req.comment ? `: ${req.comment}` : ''}`;
  p.touch();
  return `rejected batch ${batch.number}`;
}

/** Runs the failed (and unreached) instances again: failed batches go back to pending, the release to Releasing. */
function retry(p: Pass): string {
  const r = p.release;
  const failed = new Set(p.s.instances.filter((i) => i.status === 'failed' || i.status === 'unreachable' || i.status === 'rolled back'));
  const resumable = r.status === 'Release failed' || (r.status === 'Released' && failed.size > 0);
  if (!resumable) throw new ConflictError(`release ${r.id} is ${r.status}${r.status === 'Released' ? ' with no failed instance' : ''}; nothing to retry`);
  p.touchAll();
  for (const i of p.s.instances) {
    if (failed.has(i)) p.setInstanceStatus(i, 'pending', '');
    if (i.status !== 'pending') continue;
    // An abandoned or failed download runs again; a finished one is kept.
    if (!i.downloaded) i.step = '';
    i.stepState = '';
    i.phase = '';
  }
  for (const batch of p.s.batches) {
    if (batch.status === 'failed') p.setBatchStatus(batch, 'pending');
  }
  r.stopReason = null;
  r.revert = false;
  r.waitingFor = '';
  p.setReleaseStatus('Releasing', '');
  return `retrying ${failed.size} instance(s)`;
}
