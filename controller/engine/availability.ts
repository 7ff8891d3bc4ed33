// The max-unavailable guard: how many instances of the app are out of service, across releases and groups.
import type { ReleaseInstanceRecord } from '../domain/records.js';
import type { Pass } from './pass.js';

/** Out of service: moved off its old edition and not released (yet), or being rolled back. */
export function isOutOfService(i: ReleaseInstanceRecord): boolean {
  return i.moved !== 'none' && (i.status !== 'released' || i.phase === 'rollback');
}

/** Instances of the app out of service now, in this release and the app's other active releases. */
export function outOfService(p: Pass): number {
  return p.s.instances.filter(isOutOfService).length + p.s.elsewhere.outOfService;
}

/** Start of `waiting_for` while the guard holds a release. */
export const BLOCKED_PREFIX = 'max unavailable';

/** Text of `waiting_for` while the guard holds the release. */
export function blockedText(limit: number): string {
  return `${BLOCKED_PREFIX} (${limit}) reached`;
}

/**
 * True when one more instance may leave service. Otherwise the release waits (waiting_for says so) for an
 * instance in progress to come back; when none is in progress anywhere, the out-of-service ones are failures
 * that will not come back by themselves, and the release stops rather than wait forever.
 */
export function hasSlot(p: Pass): boolean {
  const limit = p.release.spec.maxUnavailable;
  if (limit <= 0) return true;
  const r = p.release;
  const out = outOfService(p);
  if (out < limit) {
    if (r.waitingFor === blockedText(limit)) {
      r.waitingFor = '';
      p.touch();
    }
    return true;
  }
  const busyHere = p.s.instances.some(
    (i) => isOutOfService(i) && (i.stepState === 'running' || i.status === 'in progress' || i.phase === 'revert' || i.phase === 'rollback'),
  );
  if (!busyHere && p.s.elsewhere.busy === 0 && r.status === 'Releasing' && r.stopReason === null) {
    r.stopReason = 'failed';
    r.nextBatchAt = null;
    r.message = `max unavailable (${limit}) reached: ${out} instance(s) of ${r.app} out of service and none coming back`;
    p.touch();
    return false;
  }
  if (r.waitingFor !== blockedText(limit)) {
    r.waitingFor = blockedText(limit);
    p.touch();
  }
  return false;
}
