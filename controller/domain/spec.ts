// Compiles the operator's release spec (zero values mean "default") into a complete spec once.
import { BadInputError } from '../../common/errors.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { parseUpdateOrder, type UpdateOrder } from './update-order.js';

export interface CompiledSpec {
  app: string;
  edition: string;
  /** Group name or "all". */
  group: string;
  /** atomic: two halves of the whole target; the routers switch the app's default edition between them. */
  strategy: 'rolling' | 'grouped' | 'atomic';
  batches: number;
  groupSize: number;
  batchMode: 'auto' | 'manual';
  /** Auto mode: time between one batch finishing and the next starting. */
  waitMs: number;
  approvalBefore: number[];
  triggerBefore: number[];
  reset: 'soft' | 'hard';
  drainMs: number;
  fullDrain: boolean;
  bestEffort: boolean;
  autoRollback: boolean;
  maxUnavailable: number;
  timeouts: { downloadMs: number; stopMs: number; startMs: number; healthMs: number };
  start: boolean;
  /** path "" means the app's health path. */
  health: { path: string; expectedStatus: number; retries: number; intervalMs: number; timeoutMs: number };
  /** Soft resets' update order for this release; '' (also in specs stored before it existed): the app's. */
  updateOrder?: UpdateOrder | '';
  /**
   * Go ahead although the release leaves an edition that routing rules name active nowhere (those rules then fall
   * back to the default). Checked at create only, and never stored with the release (a back-out does not inherit it).
   */
  force?: boolean;
  /** Environment overrides for this release's start and restart commands (a validation clone's --env). */
  env?: Record<string, string>;
  /** Only these instances of the group (a validation clone named by instance); absent: every instance of the group. */
  instances?: string[];
}

export const SPEC_DEFAULTS = {
  batches: 2,
  groupSize: 1,
  drainMs: 30_000,
  downloadMs: 5 * 60_000,
  stopMs: 60_000,
  startMs: 60_000,
  healthMs: 60_000,
  healthIntervalMs: 500,
  healthTimeoutMs: 2_000,
} as const;

export function compileReleaseSpec(raw: Partial<ReleaseSpec>): CompiledSpec {
  const app = (raw.app ?? '').trim();
  const edition = (raw.edition ?? '').trim();
  if (!app) throw new BadInputError('release: app is required');
  if (!edition) throw new BadInputError('release: edition is required');
  const healthMs = raw.timeouts?.healthMs || SPEC_DEFAULTS.healthMs;
  const intervalMs = raw.health?.intervalMs || SPEC_DEFAULTS.healthIntervalMs;
  return {
    app,
    edition,
    group: (raw.group ?? '').trim() || 'all',
    strategy: oneOf(raw.strategy, ['rolling', 'grouped', 'atomic'], 'strategy'),
    batches: raw.batches || SPEC_DEFAULTS.batches,
    groupSize: raw.groupSize || SPEC_DEFAULTS.groupSize,
    batchMode: oneOf(raw.batchMode, ['auto', 'manual'], 'batch mode'),
    waitMs: raw.waitMs ?? 0,
    approvalBefore: batchNumbers(raw.approvalBefore, 'approval'),
    triggerBefore: batchNumbers(raw.triggerBefore, 'trigger'),
    reset: oneOf(raw.reset, ['soft', 'hard'], 'reset'),
    drainMs: raw.drainMs || SPEC_DEFAULTS.drainMs,
    fullDrain: raw.fullDrain ?? false,
    bestEffort: raw.bestEffort ?? false,
    autoRollback: raw.autoRollback ?? false,
    maxUnavailable: raw.maxUnavailable ?? 0,
    timeouts: {
      downloadMs: raw.timeouts?.downloadMs || SPEC_DEFAULTS.downloadMs,
      stopMs: raw.timeouts?.stopMs || SPEC_DEFAULTS.stopMs,
      startMs: raw.timeouts?.startMs || SPEC_DEFAULTS.startMs,
      healthMs,
    },
    start: raw.start ?? false,
    health: {
      path: raw.health?.path ?? '',
      expectedStatus: raw.health?.expectedStatus || 200,
      // One try fewer than fit in the deadline, so the agent's own verdict (e.g. "answered 500") arrives before it.
      retries: raw.health?.retries || Math.max(1, Math.floor(healthMs / intervalMs) - 1),
      intervalMs,
      timeoutMs: raw.health?.timeoutMs || SPEC_DEFAULTS.healthTimeoutMs,
    },
    updateOrder: parseUpdateOrder(raw.updateOrder, 'release'),
    force: raw.force ?? false,
  };
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T {
  const text = (value ?? '').trim();
  if (text === '') return allowed[0]!;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new BadInputError(`release: ${what} must be one of ${allowed.join(', ')} (got '${text}')`);
  }
  return text as T;
}

function batchNumbers(values: readonly number[] | undefined, what: string): number[] {
  const list = [...new Set(values ?? [])].sort((a, b) => a - b);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new BadInputError(`release: ${what} batch numbers start at 1`);
  return list;
}
