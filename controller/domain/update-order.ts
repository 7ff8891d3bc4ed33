// The update orders a soft reset can use, and the parse of an operator's choice (app create, release spec).
import { BadInputError } from '../../common/errors.js';

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
