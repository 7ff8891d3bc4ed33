// Which update order a soft reset uses, decided once per step from the app, the release and the reset kind.
//
//   start-first:  download ─▶ restart (new process beside the old, gate switch, old drained and stopped) ─▶ health
//   stop-first:   download ─▶ quiesce ─▶ drain ─▶ restart (old stopped, then new started) ─▶ health
import type { AppRecord } from '../domain/records.js';
import type { CompiledSpec } from '../domain/spec.js';
import type { UpdateOrder } from '../domain/update-order.js';
import type { Pass } from './pass.js';

/**
 * The order the controller asks the agent for. Hard reset recycles the whole server, and an app that drains itself
 * listens on the service port, so both are stop-first. An app stored before update orders existed has none: it keeps
 * the stop-first it always had.
 */
export function plannedOrder(app: AppRecord, spec: CompiledSpec): UpdateOrder {
  if (spec.reset === 'hard' || app.drainMode === 'self') return 'stop-first';
  return spec.updateOrder || (app.updateOrder as UpdateOrder | undefined) || 'stop-first';
}

/** True when the release's soft resets start the new process first (no quiesce and drain steps before them). */
export function startsFirst(p: Pick<Pass, 's'>): boolean {
  return plannedOrder(p.s.app, p.s.release.spec) === 'start-first';
}
