// Agent self-upgrade, the pure part: statuses, the one transition table, the batch split and the reserved app name.
//
//   upgrade:  upgrading ──every target upgraded──▶ upgraded
//                 ├──────any target failed────────▶ failed    (targets not yet sent: skipped)
//                 └──────operator's cancel────────▶ cancelled (targets not yet sent: skipped; those in flight
//                                                               still finish on their Hello, result or deadline)
//
//   target:   pending ──batch starts──▶ sent ──result ok──▶ restarting ──Hello with the version──▶ upgraded
//             sent ──Hello with the version (result lost)──▶ upgraded
//             sent | restarting ──result failed, rollback reported, deadline──▶ failed
//             pending ──upgrade failed or cancelled──▶ skipped
import { BadInputError, ConflictError, IllegalTransitionError } from '../../common/errors.js';

/** The reserved app whose editions are agent packages (a tar.gz holding fleetwave-agent.cjs or fleetwave-agent). */
export const AGENT_APP = 'fleetwave-agent';

export type AgentUpgradeStatus =
  /** Batches are being sent; at most one upgrade is in this status. */
  | 'upgrading'
  /** Every target came back with the version. */
  | 'upgraded'
  /** A target failed: no further batch is sent. */
  | 'failed'
  /** An operator stopped it: no further batch is sent; targets already sent finish on their own. */
  | 'cancelled';

export type UpgradeTargetStatus =
  /** Its batch has not started. */
  | 'pending'
  /** UpgradeAgent is in the outbox (sent, or re-sent on the agent's next Hello). */
  | 'sent'
  /** The agent staged the package and is handing over to the new version. */
  | 'restarting'
  /** The agent said Hello with the new version. */
  | 'upgraded'
  /** The command failed, the keeper rolled the agent back, or the deadline passed. */
  | 'failed'
  /** The upgrade failed or was cancelled before its batch started. */
  | 'skipped';

const TARGET_MOVES: Record<UpgradeTargetStatus, readonly UpgradeTargetStatus[]> = {
  pending: ['sent', 'upgraded', 'skipped'],
  sent: ['restarting', 'upgraded', 'failed'],
  restarting: ['upgraded', 'failed'],
  upgraded: [],
  failed: [],
  skipped: [],
};

const UPGRADE_MOVES: Record<AgentUpgradeStatus, readonly AgentUpgradeStatus[]> = {
  upgrading: ['upgraded', 'failed', 'cancelled'],
  upgraded: [],
  failed: [],
  cancelled: [],
};

export function checkTargetMove(agentId: string, from: UpgradeTargetStatus, to: UpgradeTargetStatus): void {
  if (!TARGET_MOVES[from].includes(to)) throw new IllegalTransitionError(`agent upgrade target ${agentId}`, from, to);
}

export function checkUpgradeMove(id: string, from: AgentUpgradeStatus, to: AgentUpgradeStatus): void {
  if (!UPGRADE_MOVES[from].includes(to)) throw new IllegalTransitionError(`agent upgrade ${id}`, from, to);
}

/** Targets whose agent may still act on the command: a Hello or a result can move them. */
export const IN_FLIGHT: readonly UpgradeTargetStatus[] = ['sent', 'restarting'];

export interface UpgradeCandidate {
  id: string;
  group: string;
  version: string;
}

export interface PlannedTarget extends UpgradeCandidate {
  /** 1-based. */
  batch: number;
}

/**
 * Splits the agents (sorted by group, then id) into `batches` nearly equal batches, the first ones larger, or into
 * batches of `batchSize`. Neither given: one batch. More batches than agents: one agent per batch.
 */
export function planUpgrade(agents: readonly UpgradeCandidate[], options: { batches: number; batchSize: number }): PlannedTarget[] {
  if (options.batches > 0 && options.batchSize > 0) throw new BadInputError('agent upgrade: give --batches or --batch-size, not both');
  if (agents.length === 0) throw new ConflictError('agent upgrade: no agent matches (the controller knows none in these groups)');
  const sorted = [...agents].sort((a, b) => (a.group === b.group ? cmp(a.id, b.id) : cmp(a.group, b.group)));
  const size = options.batchSize > 0 ? options.batchSize : sorted.length;
  const count = options.batchSize > 0 ? Math.ceil(sorted.length / size) : Math.min(Math.max(options.batches, 1), sorted.length);
  const planned: PlannedTarget[] = [];
  if (options.batchSize > 0) {
    sorted.forEach((agent, index) => planned.push({ ...agent, batch: Math.floor(index / size) + 1 }));
    return planned;
  }
  const base = Math.floor(sorted.length / count);
  const larger = sorted.length % count;
  let at = 0;
  for (let batch = 1; batch <= count; batch++) {
    const take = base + (batch <= larger ? 1 : 0);
    for (const agent of sorted.slice(at, at + take)) planned.push({ ...agent, batch });
    at += take;
  }
  return planned;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How many batches a plan has. */
export function batchCount(plan: readonly PlannedTarget[]): number {
  return plan.reduce((max, t) => Math.max(max, t.batch), 0);
}
