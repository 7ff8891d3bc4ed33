// Which operator actions the console offers on a release: the role must allow changes (operator, admin) and the
// release's status must make the action meaningful (the engine's own checks: controller/engine/actions.ts,
// rollback.ts). The server decides in the end; this only hides buttons that could not succeed.
import type { Batch, ListSummary, Release } from './types.js';

export type ActionName = 'start' | 'approve' | 'reject' | 'trigger' | 'continue' | 'pause' | 'resume' | 'retry' | 'rollback' | 'cancel';

/** Roles that may run release actions (controller/auth.ts: ReleaseAction needs operator). */
export function canOperate(role: string | undefined): boolean {
  return role === 'operator' || role === 'admin';
}

const ACTIVE = ['Releasing', 'Suspending', 'Suspended'];
const ROLLBACK_FROM = ['Releasing', 'Suspending', 'Suspended', 'Released', 'Release failed', 'Rollback failed'];

export function actionsFor(role: string | undefined, release: Release | undefined, batches: Batch[] | undefined, summary?: ListSummary): ActionName[] {
  if (!canOperate(role) || !release?.status) return [];
  const status = release.status;
  const out: ActionName[] = [];
  if (status === 'To release') out.push('start');
  const waiting = ACTIVE.includes(status) ? (batches ?? []).find((b) => b.status === 'waiting') : undefined;
  if (waiting?.checkpoint === 'approval') out.push('approve', 'reject');
  else if (waiting?.checkpoint === 'trigger') out.push('trigger');
  else if (waiting?.checkpoint === 'continue') out.push('continue');
  if (status === 'Releasing') out.push('pause');
  if (status === 'Suspending' || status === 'Suspended') out.push('resume');
  const failedInstances = (summary?.counts ?? []).some((c) => ['failed', 'unreachable', 'rolled back'].includes(c.status ?? '') && (c.count ?? 0) > 0);
  if (status === 'Release failed' || (status === 'Released' && failedInstances)) out.push('retry');
  if (ROLLBACK_FROM.includes(status)) out.push('rollback');
  if (status === 'To release' || ACTIVE.includes(status)) out.push('cancel');
  return out;
}

/** Button text and whether the action needs a confirmation (it cannot be undone from the console). */
export const ACTION_LABELS: Record<ActionName, { label: string; confirm: boolean }> = {
  start: { label: 'Start', confirm: false },
  approve: { label: 'Approve', confirm: false },
  reject: { label: 'Reject', confirm: true },
  trigger: { label: 'Trigger', confirm: false },
  continue: { label: 'Continue', confirm: false },
  pause: { label: 'Pause', confirm: false },
  resume: { label: 'Resume', confirm: false },
  retry: { label: 'Retry', confirm: false },
  rollback: { label: 'Roll back', confirm: true },
  cancel: { label: 'Cancel release', confirm: true },
};
