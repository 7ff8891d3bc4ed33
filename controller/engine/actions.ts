// Operator actions on a release, applied to the pass before it reconciles (so both land in one transaction).
import { BadInputError, ConflictError } from '../../common/errors.js';
import type { Pass } from './pass.js';

export const RELEASE_ACTIONS = ['start', 'pause', 'resume', 'continue', 'approve', 'reject', 'trigger', 'retry', 'rollback', 'cancel'] as const;
export type ReleaseAction = (typeof RELEASE_ACTIONS)[number];

export interface ActionRequest {
  action: string;
  actor: string;
  comment: string;
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
    case 'rollback':
      throw new ConflictError(`${req.action} is not supported yet`);
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
  r.stopReason = 'failed';
  r.message = `batch ${batch.number} rejected by ${req.actor}${req.comment ? `: ${req.comment}` : ''}`;
  p.touch();
  return `rejected batch ${batch.number}`;
}
