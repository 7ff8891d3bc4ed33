// One reconcile pass over a release: a fixed list of steps, repeated until a round changes nothing.
//
//   advanceInstances → applyFailurePolicy → settleBatches → advanceRelease
//   (a release in Rolling back runs rollbackRound instead, see rollback.ts)
//
// Every input (creation, command result, drained event, deadline, agent, operator action) ends here.
import { RELEASE_EVENTS } from '../../common/events.js';
import type { BatchRecord, ReleaseInstanceRecord } from '../domain/records.js';
import { advanceInstance, isBusy, REVERTED_BATCH } from './instance-steps.js';
import type { Pass } from './pass.js';
import { rollbackRound, startRollback } from './rollback.js';
import { holdForFirstHalf, holdForSwitch, routersAfterEnd } from './router-gates.js';

/** More rounds than a release needs (a round moves every instance one step, or one batch); guards against a loop bug. */
const MAX_ROUNDS = 10_000;

const MOVING = new Set(['Releasing', 'Suspending', 'Suspended']);

export function reconcilePass(p: Pass): void {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    p.changed = false;
    // Each round decides again whether a router gate holds; the last round's answer stands.
    p.routerHold = false;
    if (p.release.status === 'Rolling back') {
      rollbackRound(p);
    } else if (MOVING.has(p.release.status)) {
      for (const instance of p.s.instances) advanceInstance(p, instance);
      applyFailurePolicy(p);
      settleBatches(p);
      advanceRelease(p);
    }
    if (!p.changed) break;
  }
  if (p.routerHold || p.routesChanged) p.out.routers = { changed: p.routesChanged, wait: p.routerHold };
}

function failedIn(p: Pass, batch: BatchRecord): ReleaseInstanceRecord[] {
  return p.membersOf(batch).filter((i) => i.status === 'failed' || i.status === 'unreachable');
}

function describe(failed: ReleaseInstanceRecord[]): string {
  const first = `${failed[0]!.instance}: ${failed[0]!.error || failed[0]!.status}`;
  return failed.length > 1 ? `${first} (and ${failed.length - 1} more)` : first;
}

/** First batch: any failure stops the release and reverts the batch. Later: best effort continues, otherwise stop. */
export function applyFailurePolicy(p: Pass): void {
  const r = p.release;
  if (r.stopReason !== null) return;
  for (const batch of p.s.batches) {
    if (batch.status !== 'running') continue;
    const failed = failedIn(p, batch);
    if (failed.length === 0) continue;
    if (batch.number === REVERTED_BATCH) {
      r.stopReason = 'failed';
      r.revert = true;
      r.message = `batch ${batch.number} failed: ${describe(failed)}; its instances go back to their previous edition`;
    } else if (!r.spec.bestEffort) {
      r.stopReason = 'failed';
      r.message = `batch ${batch.number} failed: ${describe(failed)}`;
    } else {
      continue;
    }
    r.nextBatchAt = null;
    p.touch();
    return;
  }
}

function settleBatches(p: Pass): void {
  for (const batch of p.s.batches) {
    if (batch.status !== 'running') continue;
    const members = p.membersOf(batch);
    if (members.some((i) => isBusy(p, i))) continue;
    // Without a stop, a member not started yet still waits for its siblings' downloads.
    if (!p.stopping && members.some((i) => i.status === 'pending')) continue;
    const ok = members.every((i) => i.status === 'released');
    p.setBatchStatus(batch, ok ? 'done' : 'failed');
    const spec = p.release.spec;
    const more = p.s.batches.some((b) => b.status === 'pending' || b.status === 'waiting');
    if (!p.stopping && more && spec.batchMode === 'auto' && spec.waitMs > 0) p.release.nextBatchAt = p.now + spec.waitMs;
  }
}

function advanceRelease(p: Pass): void {
  const r = p.release;
  const running = p.s.batches.find((b) => b.status === 'running');
  if (p.stopping) {
    if (!running && !p.s.instances.some((i) => isBusy(p, i))) stop(p);
    return;
  }
  if (r.status === 'Suspending') {
    // Suspended once no instance is mid-pipeline: none is left out of service while paused.
    if (p.s.instances.some((i) => i.status === 'in progress')) return;
    r.waitingFor = 'resume';
    return p.setReleaseStatus('Suspended');
  }
  if (r.status === 'Suspended') return;
  if (running) return;
  const next = p.s.batches.find((b) => b.status === 'pending' || b.status === 'waiting');
  if (!next) return finishReleased(p);
  // Atomic (router-gates.ts): the switch comes first after batch 1, the first half leaves the rotation last.
  if (holdForSwitch(p, next)) return;
  if (r.nextBatchAt !== null && p.now < r.nextBatchAt) {
    p.setWaitingFor(`batch ${next.number} (automatic wait until ${new Date(r.nextBatchAt).toISOString().slice(11, 19)} UTC)`);
    return;
  }
  const gate = gateBefore(p, next);
  if (gate) return holdAtGate(p, next, gate);
  if (holdForFirstHalf(p, next)) return;
  startBatch(p, next);
}

/** What must happen before the batch may start, or null. */
export function gateBefore(p: Pass, batch: BatchRecord): 'approval' | 'trigger' | 'continue' | null {
  if (batch.cleared) return null;
  const spec = p.release.spec;
  if (spec.approvalBefore.includes(batch.number)) return 'approval';
  if (spec.triggerBefore.includes(batch.number)) return 'trigger';
  if (spec.batchMode === 'manual' && batch.number > 1) return 'continue';
  return null;
}

function holdAtGate(p: Pass, batch: BatchRecord, gate: 'approval' | 'trigger' | 'continue'): void {
  // Said again when it waits already: a resume cleared it.
  p.setWaitingFor(`${gate} before batch ${batch.number}`);
  if (batch.status === 'waiting' && batch.checkpoint === gate) return;
  // A batch may wait already: an atomic release's switch held it first.
  batch.checkpoint = gate;
  if (batch.status !== 'waiting') p.setBatchStatus(batch, 'waiting');
  else p.touch();
  p.emit(RELEASE_EVENTS.checkpointWaiting, { beforeBatch: batch.number, checkpoint: gate, group: batch.group });
}

function startBatch(p: Pass, batch: BatchRecord): void {
  const r = p.release;
  r.currentBatch = batch.number;
  r.nextBatchAt = null;
  p.setWaitingFor('');
  p.setBatchStatus(batch, 'running');
  // Instances whose download already failed fail the batch before any sibling moves.
  applyFailurePolicy(p);
}

function finishReleased(p: Pass): void {
  const failed = p.s.instances.filter((i) => i.status === 'failed' || i.status === 'unreachable');
  const message = failed.length ? `released with best effort; ${failed.length} instance(s) failed: ${describe(failed)}` : '';
  finish(p, 'Released', message);
}

/** The release stopped and settled: it fails, and with auto-rollback a failure rolls back what moved. */
function stop(p: Pass): void {
  const r = p.release;
  const message = r.message;
  finish(p, 'Release failed', message);
  // Cancel and reject are the operator's decisions; only a failure rolls back by itself.
  if (r.stopReason !== 'failed' || !r.spec.autoRollback || !p.s.instances.some((i) => i.moved !== 'none')) return;
  const result = startRollback(p, 0, `auto-rollback after: ${message}`);
  p.recordChange({ actor: 'controller', action: 'rollback', comment: 'auto-rollback', result });
}

/** Ends the release: nothing waits any more, and no command of it is sent again. */
function finish(p: Pass, status: 'Released' | 'Release failed', message: string): void {
  for (const i of p.s.instances) {
    if (i.stepState !== 'running') continue;
    if (i.commandId) p.abandon(i.commandId, 'release ended');
    p.finishStep(i, 'failed', 'release ended');
  }
  for (const batch of p.s.batches) {
    if (batch.status === 'waiting') p.setBatchStatus(batch, 'failed');
  }
  p.release.nextBatchAt = null;
  p.release.waitingFor = '';
  routersAfterEnd(p);
  p.setReleaseStatus(status, message);
}
