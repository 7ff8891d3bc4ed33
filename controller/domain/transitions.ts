// The one transition table of the controller: every allowed move of a release, a batch and an instance.
//
//  release:
//                         ┌───────────── cancel ──────────────┐
//   To release ─start─▶ Releasing ─all batches done─▶ Released│
//                         │  ▲   └─failure / cancel─▶ Release failed ◀┘
//                   pause │  │ resume                       │  (retry: back to Releasing, also from Released)
//                         ▼  │                              ▼
//                     Suspending ─nothing mid-pipeline─▶ Suspended   Rolling back ─▶ Rolled back | Rollback failed
//            (rollback: from Releasing, Suspending, Suspended, Released, Release failed, Rollback failed)
//
//  batch:     pending ─▶ waiting (checkpoint / continue) ─▶ running ─▶ done | failed
//  instance:  pending ─▶ in progress ─▶ released | failed | unreachable
//             a moved instance going back (first-batch revert, rollback) ─▶ rolling back ─▶ rolled back | failed | unreachable
//             (a failed or unreachable one keeps its status during a revert: unreachable ─▶ rolled back)
//             (retry: failed | unreachable | rolled back ─▶ pending)
import { IllegalTransitionError } from '../../common/errors.js';

export const RELEASE_STATUSES = [
  /** Created, waiting for the operator's start. */
  'To release',
  /** Batches are moving. */
  'Releasing',
  /** Every batch finished (with best effort, some instances may have failed). */
  'Released',
  /** A failure (or a cancel) stopped the release. */
  'Release failed',
  /** The previous edition is being rolled out again. */
  'Rolling back',
  /** The rollback finished. */
  'Rolled back',
  /** The rollback itself failed. */
  'Rollback failed',
  /** Pause asked: the batch in progress finishes, no new batch starts. */
  'Suspending',
  /** Paused between batches until resumed. */
  'Suspended',
] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

/** Statuses after which the release changes no more on its own. */
export const FINAL_RELEASE_STATUSES: readonly ReleaseStatus[] = ['Released', 'Release failed', 'Rolled back', 'Rollback failed'];

export const BATCH_STATUSES = [
  /** Not started. */
  'pending',
  /** Held by a checkpoint (approval, trigger) or by manual batch mode. */
  'waiting',
  /** Its instances are moving. */
  'running',
  /** Every instance settled, none failed. */
  'done',
  /** Settled with at least one failed or unreachable instance, or stopped. */
  'failed',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

export const INSTANCE_STATUSES = [
  /** Its batch has not reached it (its download may already run). */
  'pending',
  /** Its step pipeline runs. */
  'in progress',
  /** Runs the release's edition and passed its health check. */
  'released',
  /** A step failed or timed out while its agent was connected. */
  'failed',
  /** A step timed out while its agent was unreachable. */
  'unreachable',
  /** Going back to the edition it ran before the release: a rollback, or the revert of a failed first batch. */
  'rolling back',
  /** Back on the edition it ran before the release. */
  'rolled back',
] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

type Table<S extends string> = { readonly [K in S]: readonly S[] };

const RELEASE_MOVES: Table<ReleaseStatus> = {
  'To release': ['Releasing', 'Release failed'],
  Releasing: ['Released', 'Release failed', 'Suspending', 'Rolling back'],
  // Releasing: retry of the instances a best-effort release left failed.
  Released: ['Releasing', 'Rolling back'],
  'Release failed': ['Releasing', 'Rolling back'],
  'Rolling back': ['Rolled back', 'Rollback failed'],
  'Rolled back': [],
  'Rollback failed': ['Rolling back'],
  Suspending: ['Suspended', 'Releasing', 'Release failed', 'Rolling back'],
  Suspended: ['Releasing', 'Release failed', 'Rolling back'],
};

const BATCH_MOVES: Table<BatchStatus> = {
  pending: ['waiting', 'running', 'failed'],
  waiting: ['running', 'failed'],
  running: ['done', 'failed'],
  done: [],
  // Retry runs a failed batch again.
  failed: ['pending'],
};

const INSTANCE_MOVES: Table<InstanceStatus> = {
  // released: already on the edition; failed/unreachable: its download failed; rolling back: a retried moved instance.
  pending: ['in progress', 'released', 'failed', 'unreachable', 'rolling back'],
  // rolled back (here and from released, failed): a revert or rollback a controller before `rolling back` began.
  'in progress': ['released', 'failed', 'unreachable', 'rolled back', 'rolling back'],
  // failed/unreachable: its revert failed.
  released: ['rolled back', 'failed', 'unreachable', 'rolling back'],
  // pending: retry; rolled back: a moved failed instance went back (a first-batch revert keeps it failed).
  failed: ['pending', 'rolled back', 'rolling back'],
  unreachable: ['pending', 'rolled back', 'failed', 'rolling back'],
  // failed/unreachable: the rollback could not put it back.
  'rolling back': ['rolled back', 'failed', 'unreachable'],
  // pending: retry of a release whose first batch was reverted.
  'rolled back': ['pending'],
};

export const TRANSITIONS = {
  release: RELEASE_MOVES,
  batch: BATCH_MOVES,
  instance: INSTANCE_MOVES,
} as const;

export type Machine = keyof typeof TRANSITIONS;
type StatusOf<M extends Machine> = M extends 'release' ? ReleaseStatus : M extends 'batch' ? BatchStatus : InstanceStatus;

export function canTransition<M extends Machine>(machine: M, from: StatusOf<M>, to: StatusOf<M>): boolean {
  const moves = (TRANSITIONS[machine] as Table<string>)[from];
  return moves !== undefined && moves.includes(to);
}

/** Returns `to` when the table allows the move; otherwise throws IllegalTransitionError. */
export function transition<M extends Machine>(machine: M, from: StatusOf<M>, to: StatusOf<M>): StatusOf<M> {
  if (!canTransition(machine, from, to)) throw new IllegalTransitionError(machine, from, to);
  return to;
}

export function isFinalRelease(status: ReleaseStatus): boolean {
  return FINAL_RELEASE_STATUSES.includes(status);
}
