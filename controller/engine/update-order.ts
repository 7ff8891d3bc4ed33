// Which update order a soft reset uses, decided once per step from the app, the release and the reset kind.
//
//   start-first:  download ─▶ restart (new process beside the old, gate switch, old drained and stopped) ─▶ health
//   stop-first:   download ─▶ quiesce ─▶ drain ─▶ restart (old stopped, then new started) ─▶ health
import { BadInputError } from '../../common/errors.js';
import type { AppRecord } from '../domain/records.js';
import type { Pass } from './pass.js';
import type { CompiledSpec } from './spec.js';

/** How a soft reset replaces an instance's process. */
export type UpdateOrder =
  /** The new edition starts on a fresh internal port while the old one serves; the agent switches, drains and stops. */
  | 'start-first'
  /** The controller quiesces and drains; the agent stops the old process, then starts the new one. */
  | 'stop-first';

export const UPDATE_ORDERS: readonly UpdateOrder[] = ['start-first', 'stop-first'];
/** What `app create` gives an app that names no order. */
export const DEFAULT_UPDATE_ORDER: UpdateOrder = 'start-first';

/** '' stays '' (the caller's default applies); anything else must be an order. */
export function parseUpdateOrder(value: string | undefined, what: string): UpdateOrder | '' {
  const text = (value ?? '').trim();
  if (text === '') return '';
  if (!(UPDATE_ORDERS as readonly string[]).includes(text)) {
    throw new BadInputError(`${what}: update order must be one of ${UPDATE_ORDERS.join(', ')} (got '${text}')`);
  }
  return text as UpdateOrder;
}

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
