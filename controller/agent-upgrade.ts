// The agent upgrade coordinator (docs/agent-upgrade.md): plans the batches, writes each batch's UpgradeAgent commands
// to the outbox, and moves targets on results, Hellos and deadlines — every move one transaction, sent after commit.
import { randomUUID } from 'node:crypto';
import { BadInputError, ConflictError, NotFoundError } from '../common/errors.js';
import { formatDuration } from '../common/durations.js';
import type { Logger } from '../common/logger.js';
import type { StartAgentUpgradeRequest } from '../proto/gen/fleetwave/v1/admin.js';
import { Command, type CommandResult, type Hello } from '../proto/gen/fleetwave/v1/agent.js';
import { AGENT_APP, batchCount, planUpgrade } from './domain/agent-upgrade.js';
import type { PendingCommand } from './domain/ports.js';
import type { CommandSink } from './engine/engine.js';
import type { AgentUpgradeRecord, UpgradeTargetRecord } from './store/agent-upgrades.js';
import type { Store } from './store/store.js';

/** Command ids of UpgradeAgent start with this, so the agent service hands their results here. */
export const UPGRADE_COMMAND_PREFIX = 'agent-upgrade-';
/** How long an agent has, from the command's sending, to come back with the new version. */
export const DEFAULT_UPGRADE_TIMEOUT_MS = 5 * 60_000;
/** A rollback report older than the command (a stale one from an earlier try) does not count; this much skew is allowed. */
const FAILURE_SKEW_MS = 1_000;
const MIN_TIMER_MS = 5;

export interface AgentUpgradesOptions {
  store: Store;
  sink: CommandSink;
  logger: Logger;
  now?: () => number;
  newId?: () => string;
}

export class AgentUpgrades {
  private readonly store: Store;
  private readonly sink: CommandSink;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly newId: () => string;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(o: AgentUpgradesOptions) {
    this.store = o.store;
    this.sink = o.sink;
    this.log = o.logger.child({ component: 'agent-upgrade' });
    this.now = o.now ?? (() => Date.now());
    this.newId = o.newId ?? (() => randomUUID().slice(0, 8));
  }

  /** Fails what ran out while the controller was down, and arms the deadline timer. */
  start(): void {
    this.running = true;
    this.expire();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Plans the upgrade and sends its first batch. */
  create(req: StartAgentUpgradeRequest, actor: string): AgentUpgradeRecord {
    const version = req.version.trim();
    if (!version) throw new BadInputError('agent upgrade: --to needs a version (an edition of fleetwave-agent)');
    const edition = this.store.hasApp(AGENT_APP) ? this.store.listEditions(AGENT_APP).find((e) => e.name === version) : undefined;
    if (!edition) throw new NotFoundError(`agent upgrade: no agent package ${version} (publish it first: fleetwave agent publish FILE --version ${version})`);
    const groups = new Set(req.groups.map((g) => g.trim()).filter(Boolean));
    const agents = this.store.listAgents().filter((a) => groups.size === 0 || groups.has(a.group));
    for (const group of groups) if (!agents.some((a) => a.group === group)) throw new NotFoundError(`agent upgrade: group '${group}' has no agent`);
    const plan = planUpgrade(
      agents.map((a) => ({ id: a.id, group: a.group, version: a.version })),
      { batches: req.batches, batchSize: req.batchSize },
    );
    const id = `u-${this.newId()}`;
    const now = this.now();
    const sent: PendingCommand[] = [];
    const upgrade = this.store.transaction(() => {
      const q = this.store.agentUpgrades;
      const active = q.active();
      if (active) throw new ConflictError(`agent upgrade ${active.id} to ${active.version} is still upgrading; one runs at a time`);
      // A cancelled or failed upgrade may leave agents that were sent its package: a second command to such an agent
      // would race the first through its keeper. Wait until each comes back or its deadline passes.
      const straggler = q.anyInFlight();
      if (straggler) throw new ConflictError(`agent ${straggler.agentId} is still ${straggler.status} for agent upgrade ${straggler.upgradeId}; start a new upgrade once it comes back or its deadline passes (fleetwave agent upgrade-status ${straggler.upgradeId})`);
      q.create(
        { id, version, url: edition.url, sha256: edition.sha256, size: edition.size, batches: batchCount(plan), timeoutMs: req.timeoutMs || DEFAULT_UPGRADE_TIMEOUT_MS, createdBy: actor, createdUnixMs: now },
        plan,
      );
      this.store.recordChange({ atUnixMs: now, actor, action: 'agent-upgrade', app: AGENT_APP, releaseId: id, comment: `to ${version} in ${batchCount(plan)} batches`, result: 'ok' });
      const created = q.get(id);
      this.advance(created, now, sent);
      return q.get(id);
    });
    this.log.info({ upgrade: id, version, agents: plan.length, batches: upgrade.batches }, 'agent upgrade started');
    this.afterCommit(sent);
    return upgrade;
  }

  /**
   * Stops the upgrade (an empty id: the newest): targets not yet sent are skipped and no further batch is sent.
   * Targets already sent are left to finish on their own — the agent may be mid-restart, so their Hello, result or
   * deadline still moves them — and only they, not the upgrade, change from then on.
   */
  cancel(id: string, actor: string, comment: string): AgentUpgradeRecord {
    const now = this.now();
    const upgrade = this.store.transaction(() => {
      const q = this.store.agentUpgrades;
      const upgrade = id ? q.get(id) : q.latest();
      if (!upgrade) throw new NotFoundError('agent upgrade: none was started yet');
      if (upgrade.status !== 'upgrading') throw new ConflictError(`agent upgrade ${upgrade.id} already ended ${upgrade.status}; nothing to cancel`);
      q.skipPending(upgrade.id, now);
      q.finish(upgrade, 'cancelled', `cancelled by ${actor}${comment ? `: ${comment}` : ''}`, now);
      this.store.recordChange({ atUnixMs: now, actor, action: 'agent-upgrade-cancel', app: AGENT_APP, releaseId: upgrade.id, comment, result: 'ok' });
      return upgrade;
    });
    const inFlight = this.store.agentUpgrades.inFlightCount(upgrade.id);
    this.log.info({ upgrade: upgrade.id, actor, inFlight }, 'agent upgrade cancelled');
    return upgrade;
  }

  get(id: string): { upgrade: AgentUpgradeRecord; targets: UpgradeTargetRecord[] } {
    const q = this.store.agentUpgrades;
    const upgrade = id ? q.get(id) : q.latest();
    if (!upgrade) throw new NotFoundError('agent upgrade: none was started yet');
    return { upgrade, targets: q.targets(upgrade.id) };
  }

  /** A command result from an agent; false when it is not an UpgradeAgent's (the engine's then). */
  onResult(agentId: string, result: CommandResult): boolean {
    if (!result.commandId.startsWith(UPGRADE_COMMAND_PREFIX)) return false;
    const sent: PendingCommand[] = [];
    this.store.transaction(() => {
      const q = this.store.agentUpgrades;
      const target = q.byCommand(result.commandId);
      if (!target || target.agentId !== agentId) return;
      if (target.status !== 'sent') {
        // Replayed, or the Hello with the new version came first: only the outbox row is left to close.
        q.closeCommand(result.commandId, { ok: result.ok, error: result.error });
        return;
      }
      const now = this.now();
      if (result.ok) {
        q.moveTarget(target, 'restarting', now);
        q.closeCommand(result.commandId, { ok: true, error: '' });
        this.log.info({ agent: agentId, upgrade: target.upgradeId }, 'agent staged its upgrade and restarts');
      } else {
        q.moveTarget(target, 'failed', now, result.error || 'UpgradeAgent failed');
        this.advance(q.get(target.upgradeId), now, sent);
      }
    });
    this.afterCommit(sent);
    return true;
  }

  /** Every Hello: the new version completes the agent's target; a reported rollback fails it. */
  onHello(hello: Hello): void {
    const q = this.store.agentUpgrades;
    const target = q.inFlightOf(hello.agentId);
    if (!target) return;
    const sent: PendingCommand[] = [];
    this.store.transaction(() => {
      const upgrade = q.get(target.upgradeId);
      const now = this.now();
      if (hello.version === upgrade.version) {
        q.moveTarget(target, 'upgraded', now);
        this.log.info({ agent: hello.agentId, upgrade: upgrade.id, version: hello.version }, 'agent upgraded');
      } else if (this.reportsRollback(hello, upgrade, target, now)) {
        q.moveTarget(target, 'failed', now, `rolled back to ${hello.version}: ${hello.upgradeFailure!.reason}`);
        this.log.warn({ agent: hello.agentId, upgrade: upgrade.id, reason: hello.upgradeFailure!.reason }, 'agent upgrade rolled back on the host');
      } else return;
      this.advance(upgrade, now, sent);
    });
    this.afterCommit(sent);
  }

  /** A rollback report for this version made after the command was sent (agent clock corrected by the Hello's skew). */
  private reportsRollback(hello: Hello, upgrade: AgentUpgradeRecord, target: UpgradeTargetRecord, now: number): boolean {
    const failure = hello.upgradeFailure;
    if (!failure || failure.version !== upgrade.version) return false;
    if (target.status === 'restarting') return true;
    const skew = hello.sentUnixMs > 0 ? hello.sentUnixMs - now : 0;
    return failure.failedUnixMs - skew >= target.sentUnixMs - FAILURE_SKEW_MS;
  }

  /**
   * Decides what follows in the upgrade, in the caller's transaction: a failed target fails it (targets not yet sent
   * are skipped); a batch whose targets are all upgraded starts the next one, or ends the upgrade.
   */
  private advance(upgrade: AgentUpgradeRecord, now: number, sent: PendingCommand[]): void {
    if (upgrade.status !== 'upgrading') return;
    const q = this.store.agentUpgrades;
    // Indexed queries, not the whole target list: each Hello costs the same at 10 agents as at 10,000.
    const failed = q.firstFailed(upgrade.id);
    if (failed) {
      q.skipPending(upgrade.id, now);
      q.finish(upgrade, 'failed', `agent ${failed.agentId}: ${failed.error}`, now);
      this.store.recordChange({ atUnixMs: now, actor: 'controller', action: 'agent-upgrade-failed', app: AGENT_APP, releaseId: upgrade.id, comment: upgrade.message, result: 'failed' });
      return;
    }
    let batch = upgrade.currentBatch;
    while (batch === 0 || q.batchDone(upgrade.id, batch)) {
      if (batch >= upgrade.batches) {
        q.finish(upgrade, 'upgraded', '', now);
        this.store.recordChange({ atUnixMs: now, actor: 'controller', action: 'agent-upgraded', app: AGENT_APP, releaseId: upgrade.id, comment: `every agent runs ${upgrade.version}`, result: 'ok' });
        return;
      }
      batch++;
      q.setCurrentBatch(upgrade.id, batch);
      for (const t of q.batchTargets(upgrade.id, batch)) this.startTarget(upgrade, t, now, sent);
      this.log.info({ upgrade: upgrade.id, batch, of: upgrade.batches }, 'agent upgrade batch started');
    }
  }

  private startTarget(upgrade: AgentUpgradeRecord, t: UpgradeTargetRecord, now: number, sent: PendingCommand[]): void {
    const q = this.store.agentUpgrades;
    // Already there (installed by hand, or an earlier upgrade): nothing to send.
    if (q.agentVersion(t.agentId) === upgrade.version) return q.moveTarget(t, 'upgraded', now);
    const commandId = `${UPGRADE_COMMAND_PREFIX}${upgrade.id}-${t.agentId}`;
    const deadline = now + upgrade.timeoutMs;
    const payload = Command.encode({
      commandId,
      app: '',
      releaseId: upgrade.id,
      deadlineUnixMs: deadline,
      timeoutMs: upgrade.timeoutMs,
      upgradeAgent: { version: upgrade.version, url: upgrade.url, sha256: upgrade.sha256, size: upgrade.size },
    }).finish();
    q.send(t, commandId, payload, now, deadline);
    t.status = 'sent';
    sent.push({ commandId, agentId: t.agentId, payload });
  }

  /** Fails the targets whose deadline passed, then re-arms the timer for the next one. */
  private expire(): void {
    if (!this.running) return;
    const sent: PendingCommand[] = [];
    this.store.transaction(() => {
      const q = this.store.agentUpgrades;
      const now = this.now();
      for (const t of q.overdue(now)) {
        const waited = t.status === 'sent' ? 'to stage the package' : 'to come back with the new version';
        q.moveTarget(t, 'failed', now, `no answer within ${formatDuration(t.deadlineUnixMs - t.sentUnixMs)} ${waited}`);
        this.advance(q.get(t.upgradeId), now, sent);
      }
    });
    this.afterCommit(sent);
  }

  private afterCommit(sent: PendingCommand[]): void {
    if (sent.length) this.sink.deliver(sent);
    this.armTimer();
  }

  private armTimer(): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const at = this.store.agentUpgrades.nextDeadline();
    if (at === null) return;
    this.timer = setTimeout(() => this.expire(), Math.min(2 ** 31 - 1, Math.max(MIN_TIMER_MS, at - this.now())));
    this.timer.unref();
  }
}
