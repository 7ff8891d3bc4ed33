// An atomic release at the routers: its first half leaves the rotation before it moves, the default edition switches
// once it is done, and the second half follows.
//
//   batch 1: operator checkpoints ─▶ its downloads ─▶ route 'first-half' ─routers applied─▶ batch 1 runs
//   batch 1 done ─▶ route 'switched' ─routers applied─▶ release.switched ─▶ batch 2: wait, checkpoints ─▶ batch 2 runs
//   ends before the switch (first-batch failure once reverted, cancel, reject) ─▶ route '' (first half back in rotation)
//   ends after it ─▶ keeps 'switched';  rollback: the routers are told when it starts and when it ends
//
// A router gate holds like a checkpoint (batch.checkpoint 'router', waiting_for "router: …"). Only the pass that
// carries the routers' ack (Pass.routeApplied) passes it; every other pass over a held release asks for a sync
// (Pass.routerHold; the engine keeps one in flight per release, and only the ack of the newest sync counts), so a
// restarted controller, or a release resumed after a pause, asks the routers again. Router gates move only while
// Releasing, as checkpoints do.
//
// The first half leaves the rotation as late as it can: after batch 1's checkpoints and downloads, so the old edition
// keeps its whole capacity while an approval or a download waits. The switch comes as early as it can: right after
// batch 1, before batch 2's automatic wait and checkpoints, so an approval of batch 2 is given on the new edition
// serving every request.
import { RELEASE_EVENTS } from '../../common/events.js';
import type { BatchRecord } from '../domain/records.js';
import type { Pass } from './pass.js';

/** batch.checkpoint of a batch held by a router gate. */
export const ROUTER_CHECKPOINT = 'router';

/** Start of `waiting_for` while a router gate holds the release. */
export const ROUTER_WAIT_PREFIX = 'router:';

/** Atomic with two halves (one instance is one batch: nothing serves beside it, the gate's hold covers its restart). */
function routed(p: Pass): boolean {
  return p.release.spec.strategy === 'atomic' && p.s.batches.length >= 2;
}

/**
 * Before batch 1 starts: true while it waits for its downloads or for the routers to take it out of rotation.
 * Called once batch 1's own checkpoints are passed.
 */
export function holdForFirstHalf(p: Pass, batch: BatchRecord): boolean {
  const r = p.release;
  if (!routed(p) || batch.number !== 1 || r.routePhase === 'switched') return false;
  // A member whose download failed fails the batch as it starts: nothing leaves the rotation for that.
  if (p.membersOf(batch).some((i) => i.status === 'failed' || i.status === 'unreachable')) return false;
  if (p.waitingForPackage(batch.number) > 0) {
    p.setWaitingFor(`downloads before batch ${batch.number}`);
    return true;
  }
  if (r.routePhase !== 'first-half') {
    p.setRoutePhase('first-half');
    // An operator's checkpoint passed on this batch keeps its name (and who passed it).
    if (batch.checkpoint === '') batch.checkpoint = ROUTER_CHECKPOINT;
    if (batch.status === 'pending') p.setBatchStatus(batch, 'waiting');
  }
  if (p.routeApplied === 'first-half') return false;
  return hold(p, `${ROUTER_WAIT_PREFIX} first half out of rotation before batch ${batch.number}`);
}

/** Before batch 2, first of all: true while the routers switch the default edition to the new one. */
export function holdForSwitch(p: Pass, batch: BatchRecord): boolean {
  const r = p.release;
  if (!routed(p) || batch.number !== 2 || p.s.batches[0]!.status !== 'done') return false;
  // Acked once already (batch 2 waits at its own checkpoint, or was retried): default traffic goes to the new edition.
  // A batch 2 still marked `router` was never acked (cancelled while held): it asks again when retried.
  if (r.routePhase === 'switched' && batch.checkpoint !== ROUTER_CHECKPOINT) return false;
  p.setRoutePhase('switched');
  batch.checkpoint = ROUTER_CHECKPOINT;
  if (batch.status === 'pending') p.setBatchStatus(batch, 'waiting');
  if (p.routeApplied !== 'switched') return hold(p, `${ROUTER_WAIT_PREFIX} switch to ${r.edition} before batch ${batch.number}`);
  // Passed: its own checkpoints (and the automatic wait) come next.
  batch.checkpoint = '';
  p.touch();
  p.setWaitingFor('');
  p.emit(RELEASE_EVENTS.switched, { edition: r.edition, from: switchedFrom(p) });
  return false;
}

/** The release ended (Released, Release failed): before the switch the first half is back in rotation. */
export function routersAfterEnd(p: Pass): void {
  if (p.release.spec.strategy !== 'atomic') return;
  if (p.release.routePhase === 'first-half') p.setRoutePhase('');
  p.routesChanged = true;
}

/** A rollback started (`ended` false) or ended: the default editions move with it (the routing hub computes them). */
export function routersAtRollback(p: Pass, ended: boolean): void {
  if (p.release.spec.strategy !== 'atomic') return;
  // The first half stays out of rotation while it goes back, and returns on the old edition.
  if (ended && p.release.routePhase === 'first-half') p.setRoutePhase('');
  p.routesChanged = true;
}

function hold(p: Pass, text: string): true {
  p.setWaitingFor(text);
  p.routerHold = true;
  return true;
}

/** Where default traffic went before the switch: the default editions the release started from. */
function switchedFrom(p: Pass): string[] {
  if (p.release.fromDefault.length) return [...p.release.fromDefault];
  // A release stored without them: the editions its instances ran.
  return [...new Set(p.s.instances.map((i) => i.fromEdition ?? '').filter(Boolean))].sort();
}
