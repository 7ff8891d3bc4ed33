// The step pipeline of one instance within a release: settle the running step, then start the next one.
//
//  upgrade:  download ─▶ (batch runs) quiesce ─▶ drain ─▶ restart | hard-reset ─▶ health ─▶ released   (stop-first)
//            download ─▶ (batch runs) restart (start-first: the agent switches and drains) ─▶ health ─▶ released
//  deploy:   download ─▶ (batch runs) start ───────────────────────────────────▶ health ─▶ released
//  revert:   (first batch failed) rolling back: restart on the old edition | stop (deploy) ─▶ health ─▶ rolled back
//            (a failed or unreachable instance keeps its status while it goes back)
import type { CommandOutcome, ReleaseInstanceRecord, StepName } from '../domain/records.js';
import { hasSlot } from './availability.js';
import type { Pass } from './pass.js';
import { startsFirst } from './update-order.js';

/** The batch whose moved instances go back when the release fails in it. */
export const REVERTED_BATCH = 1;

export function advanceInstance(p: Pass, i: ReleaseInstanceRecord): void {
  if (i.stepState === 'running') settleRunningStep(p, i);
  if (i.stepState === 'running') return;
  if (needsRevert(p, i)) return continueRevert(p, i);
  if (i.status === 'pending') return startPending(p, i);
  if (i.status === 'in progress') return continuePipeline(p, i);
}

/** True when the instance must (still) go back to its old edition. */
export function needsRevert(p: Pass, i: ReleaseInstanceRecord): boolean {
  return p.release.revert && i.batch === REVERTED_BATCH && i.moved !== 'none';
}

/** True while the instance has work under way that the release must wait for before it settles. */
export function isBusy(p: Pass, i: ReleaseInstanceRecord): boolean {
  if (needsRevert(p, i)) return true;
  if (i.stepState !== 'running') return i.status === 'in progress';
  // A pre-staging download only holds the release while it still moves forward.
  return i.status !== 'pending' || !p.stopping;
}

export function settleRunningStep(p: Pass, i: ReleaseInstanceRecord): void {
  const outcome = i.commandId ? p.s.outcomes[i.commandId] : undefined;
  if (outcome && !outcome.abandoned) {
    if (outcome.updateOrder && i.step === 'restart') recordOrder(p, i, outcome);
    if (outcome.ok) return stepSucceeded(p, i);
    return stepFailed(p, i, `${i.step}: ${outcome.error || 'failed'}`, false);
  }
  // `drained` proves the agent quiesced the instance: go on without waiting for its Quiesce result.
  if (i.step === 'quiesce' && i.drained && !p.release.spec.fullDrain) return drainedDuringQuiesce(p, i);
  // A full drain ignores the early `drained` event and waits the whole interval.
  if (i.step === 'drain' && i.drained && (!p.release.spec.fullDrain || i.phase === 'rollback')) return p.finishStep(i, 'ok');
  if (i.deadlineUnixMs !== null && i.deadlineUnixMs <= p.now) {
    // The drainage interval ending is the normal way out of drain when no `drained` event came.
    if (i.step === 'drain') return p.finishStep(i, 'ok', 'drain interval ended');
    if (i.commandId) p.abandon(i.commandId, `${i.step} timed out`);
    const unreachable = p.s.agentStatus[i.instance] !== 'connected';
    return stepFailed(p, i, `${i.step} timed out${unreachable ? ' (agent unreachable)' : ''}`, unreachable);
  }
}

/**
 * Keeps the order the agent used. A start-first restart that failed before its switch never stopped the old process:
 * the instance still serves its old edition, so the forward step moved nothing (no revert, nothing to roll back).
 */
function recordOrder(p: Pass, i: ReleaseInstanceRecord, outcome: CommandOutcome): void {
  i.updateOrder = outcome.updateOrder!;
  const stillOld = outcome.instance !== undefined && outcome.instance.activeEdition !== p.release.edition;
  if (!outcome.ok && outcome.updateOrder === 'start-first' && i.phase === 'upgrade' && stillOld) i.moved = 'none';
  p.touch(i);
}

/**
 * The `drained` event beat the Quiesce result: the quiesce ended when the agent marked the instance ineligible, which
 * was the agent's drain time (`drained.elapsedMs`) before now; the drain runs from there to now and ends at once.
 * Without that figure (an older agent, a pass after a controller restart) the drain reads 0 ms, as it did before.
 */
function drainedDuringQuiesce(p: Pass, i: ReleaseInstanceRecord): void {
  const drainMs = Math.min(p.drainElapsedMs.get(i.instance) ?? 0, p.now - i.stepStartedUnixMs);
  const ineligibleAt = p.now - Math.max(0, drainMs);
  p.finishStep(i, 'ok', '', ineligibleAt);
  p.beginStep(i, 'drain', undefined, ineligibleAt);
}

function stepSucceeded(p: Pass, i: ReleaseInstanceRecord): void {
  if (i.step === 'download') p.markDownloaded(i);
  p.finishStep(i, 'ok');
}

function stepFailed(p: Pass, i: ReleaseInstanceRecord, error: string, unreachable: boolean): void {
  p.finishStep(i, 'failed', error);
  if (i.phase === 'revert') return revertEnded(p, i, `revert failed: ${error}`, unreachable);
  if (i.phase === 'rollback') return rollbackEnded(p, i, `rollback failed: ${error}`, unreachable);
  p.setInstanceStatus(i, unreachable ? 'unreachable' : 'failed', error);
}

function startPending(p: Pass, i: ReleaseInstanceRecord): void {
  const r = p.release;
  const moving = !p.stopping && (r.status === 'Releasing' || r.status === 'Suspending' || r.status === 'Suspended');
  if (!i.downloaded && i.step === '' && moving) {
    // An edition the agent keeps on disk needs no download (editions are immutable once installed).
    if (!keeps(p, i.instance, r.edition)) return stagingWaits(p, i) ? undefined : p.beginStep(i, 'download');
    p.markDownloaded(i);
    p.skipStep(i, 'download', `edition ${r.edition} kept on the host`);
  }
  // A paused release starts no instance; the ones in progress finish their pipeline.
  if (r.status !== 'Releasing') return;
  if (i.downloaded && !p.stopping && p.batchOf(i).status === 'running' && allDownloaded(p, i.batch) && hasSlot(p)) beginPipeline(p, i);
}

/** True when the instance's agent reported the edition among those it keeps on disk. */
export function keeps(p: Pass, instance: string, edition: string): boolean {
  return p.s.hosts[instance]?.keptEditions.includes(edition) ?? false;
}

/**
 * The batch about to move (or moving) downloads first: later batches pre-stage once its downloads are done, so its
 * quiesce waits for its own packages only, not for the whole fleet's downloads sharing the controller and the hosts.
 */
function stagingWaits(p: Pass, i: ReleaseInstanceRecord): boolean {
  const head = p.s.batches.find((b) => b.status !== 'done' && b.status !== 'failed')?.number;
  if (head === undefined || i.batch === head) return false;
  return p.waitingForPackage(head) > 0;
}

/** A batch quiesces its first instance only once every instance of it has the package. */
function allDownloaded(p: Pass, batch: number): boolean {
  return p.waitingForPackage(batch) === 0;
}

function beginPipeline(p: Pass, i: ReleaseInstanceRecord): void {
  const host = p.s.hosts[i.instance];
  const current = host?.activeEdition ?? '';
  // A retried instance keeps the edition it ran before the release first touched it.
  if (i.fromEdition === null) i.fromEdition = current;
  p.touch(i);
  if (host && host.activeEdition === p.release.edition && host.processState === 'running' && !host.quiesced && i.moved === 'none') {
    p.setInstanceStatus(i, 'released', '');
    return;
  }
  p.setInstanceStatus(i, 'in progress');
  if (current === '') {
    i.phase = 'deploy';
    p.beginStep(i, 'start');
  } else {
    i.phase = 'upgrade';
    // Start-first: the agent starts the new edition beside the old one and switches the gate itself.
    if (p.release.spec.reset === 'soft' && startsFirst(p)) p.beginStep(i, 'restart');
    else p.beginStep(i, 'quiesce');
  }
}

const UPGRADE_NEXT: Partial<Record<StepName, StepName | 'released'>> = {
  quiesce: 'drain',
  restart: 'health',
  'hard-reset': 'health',
  health: 'released',
};
const DEPLOY_NEXT: Partial<Record<StepName, StepName | 'released'>> = { start: 'health', health: 'released' };

function continuePipeline(p: Pass, i: ReleaseInstanceRecord): void {
  if (i.stepState !== 'done' || i.step === '') return;
  const resetStep: StepName = p.release.spec.reset === 'hard' ? 'hard-reset' : 'restart';
  const next = i.step === 'drain' ? resetStep : (i.phase === 'deploy' ? DEPLOY_NEXT : UPGRADE_NEXT)[i.step];
  if (next === undefined) return;
  if (next === 'released') return p.setInstanceStatus(i, 'released', '');
  p.beginStep(i, next);
}

function continueRevert(p: Pass, i: ReleaseInstanceRecord): void {
  const from = i.fromEdition ?? '';
  if (i.phase !== 'revert') {
    i.phase = 'revert';
    p.touch(i);
    // A failed (or unreachable) instance keeps saying so while it goes back; the others say where they are going.
    if (!isFailed(i)) {
      i.step = '';
      i.stepState = '';
      p.setInstanceStatus(i, 'rolling back');
    }
    if (i.moved === 'quiesced') return p.beginStep(i, 'health');
    return from ? p.beginStep(i, 'restart', from) : p.beginStep(i, 'stop');
  }
  if (i.stepState !== 'done') return;
  if (i.step === 'restart') return p.beginStep(i, 'health');
  revertEnded(p, i, '', false);
}

/** The operator's rollback of the instance ended: back on its old edition (error "") or given up. */
export function rollbackEnded(p: Pass, i: ReleaseInstanceRecord, error: string, unreachable: boolean): void {
  i.phase = 'rollback-ended';
  p.touch(i);
  if (error) {
    const to = unreachable ? 'unreachable' : 'failed';
    if (i.status !== to) return p.setInstanceStatus(i, to, error);
    i.error = error;
    return;
  }
  i.moved = 'none';
  const back = i.fromEdition ? `back on ${i.fromEdition}` : 'stopped (it ran no edition before)';
  p.setInstanceStatus(i, 'rolled back', [i.error, back].filter(Boolean).join('; '));
}

/** The instance is back on its old edition (error "") or the controller gave up reverting it. */
function revertEnded(p: Pass, i: ReleaseInstanceRecord, error: string, unreachable: boolean): void {
  i.moved = 'none';
  p.touch(i);
  const back = i.fromEdition ? `back on ${i.fromEdition}` : 'stopped (it ran no edition before)';
  if (i.status === 'failed') {
    i.error = [i.error, error || back].filter(Boolean).join('; ');
    return;
  }
  if (error) {
    const to = unreachable ? 'unreachable' : 'failed';
    if (i.status !== to) return p.setInstanceStatus(i, to, error);
    i.error = [i.error, error].filter(Boolean).join('; ');
    return;
  }
  if (i.status === 'unreachable') i.error = [i.error, back].filter(Boolean).join('; ');
  p.setInstanceStatus(i, 'rolled back');
}

function isFailed(i: ReleaseInstanceRecord): boolean {
  return i.status === 'failed' || i.status === 'unreachable';
}
