// The engine property test's world: the real release engine on a real SQLite file, the in-memory fake fleet playing
// the agents, a clock the test moves, and an observer that checks every status change it sees against the table.
// An atomic world adds fake routers that ack when the inputs say so, and checks that no instance moves before the
// routers hold what its half needs (first half out of rotation, or the switch).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IllegalTransitionError } from '../../common/errors.js';
import { RELEASE_EVENTS } from '../../common/events.js';
import { createLogger } from '../../common/logger.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { commandKind } from '../../controller/engine/commands.js';
import { ReleaseEngine, type EngineInput } from '../../controller/engine/engine.js';
import { FakeFleet, FakeRouters, type Sent } from '../../controller/engine/fake-fleet.js';
import type { PendingCommand } from '../../controller/domain/ports.js';
import { Command } from '../../proto/gen/fleetwave/v1/agent.js';
import { canTransition, isFinalRelease, type Machine, type ReleaseStatus } from '../../controller/domain/transitions.js';
import { Store } from '../../controller/store/store.js';

export const OLD = '1.0';
export const NEW = '2.0';
export const OPERATOR_ACTIONS = ['pause', 'resume', 'continue', 'approve', 'reject', 'retry', 'rollback', 'cancel'] as const;
export const AGENT_RESULTS = ['ok', 'failed', 'timeout', 'drained', 'duplicate'] as const;

/**
 * `flush`: the results gathered so far reach the engine together (a world made with `grouped`), as one turn's do.
 * `route`: the routers ack every sync asked so far (atomic worlds; nothing elsewhere).
 */
export type Input = { op: (typeof OPERATOR_ACTIONS)[number] } | { result: (typeof AGENT_RESULTS)[number]; pick: number } | { flush: true } | { route: true };

/** Commands that move an instance's traffic forward (the health check changes nothing at the routers). */
const FORWARD_KINDS = new Set(['Quiesce', 'RestartApp', 'StartApp', 'HardResetServer']);

/** Every move observed by any world, so the suite can tell which moves of the table its cases exercised. */
export const MOVES_SEEN = new Set<string>();

/** Statuses a batch enters without an event (the observer sees it only in the next snapshot). */
const SILENT_BATCH = ['pending', 'waiting'];
/** Far past every step deadline and automatic wait of a generated spec. */
const LONG_MS = 60 * 60_000;

export class EngineWorld {
  // tmpfs when there is one: a real SQLite file, without a disk sync per pass (hundreds of cases must stay fast).
  readonly dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'fleetwave-engine-prop-'));
  readonly store = Store.open(join(this.dir, 'fleetwave.db'));
  readonly fleet = new FakeFleet();
  readonly engine: ReleaseEngine;
  /** Everything that broke an invariant, as one line each. */
  readonly violations: string[] = [];
  readonly hosts: Array<{ id: string; group: string }> = [];
  releaseId = '';
  private clock = Date.UTC(2030, 0, 1);
  private readonly last = new Map<string, string>();
  private answered: Array<{ s: Sent; ok: boolean }> = [];
  private eventCount = 0;
  /** Results and drained events not handed to the engine yet (grouped worlds only). */
  private readonly gathered: EngineInput[] = [];
  /** Where the fleet's answers go: the engine one by one, or `gathered` until a flush (the controller's inbox). */
  private readonly answers: Pick<ReleaseEngine, 'commandResult' | 'drained'>;
  /** Atomic worlds: the routers the engine syncs with. */
  readonly routers: FakeRouters | undefined;
  /** The route phase the routers apply now: the one of the newest sync they acked. */
  private routersHave = '';

  /**
   * `grouped`: agent answers reach the engine in groups, through apply(), as the controller's inbox hands them over.
   * `atomic`: releases are atomic, through fake routers.
   */
  constructor(east: number, west: number, grouped = false, atomic = false) {
    const logger = createLogger({ name: 'engine-property', level: 'silent' });
    // A pass that throws (an illegal move among them) is logged and swallowed by reconcile: count it as a violation.
    logger.error = ((obj: { err?: Error }) => void this.violations.push(`engine error: ${obj?.err?.message ?? JSON.stringify(obj)}`)) as typeof logger.error;
    this.fleet.drainedOnQuiesce = false;
    let n = 0;
    this.routers = atomic ? new FakeRouters(this.store) : undefined;
    const sink = { deliver: (commands: PendingCommand[]) => (this.checkRouted(commands), this.fleet.deliver(commands)) };
    this.engine = new ReleaseEngine({
      store: this.store,
      sink,
      logger,
      router: this.routers,
      now: () => this.clock,
      newId: () => `c${++n}-${'0'.repeat(8)}`,
      publish: (_a, _r, reason, data) => this.observe(reason, data),
    });
    this.answers = grouped
      ? {
          commandResult: (agentId, result) => void this.gathered.push({ kind: 'result', agentId, result }),
          drained: (app, instance) => void this.gathered.push({ kind: 'drained', app, instance }),
        }
      : this.engine;
    for (let i = 1; i <= east; i++) this.hosts.push({ id: `e${i}`, group: 'east' });
    for (let i = 1; i <= west; i++) this.hosts.push({ id: `w${i}`, group: 'west' });
    this.seed();
  }

  private seed(): void {
    const s = this.store;
    s.createApp({ name: 'shop', startCommand: ['node', 'server.js'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 10_000, createdUnixMs: 1 });
    for (const name of [OLD, NEW]) {
      s.installEdition({ app: 'shop', name, description: '', url: `http://x/${name}`, sha256: name.repeat(4), size: 10, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
    }
    for (const h of this.hosts) {
      this.fleet.disk.set(h.id, { active: OLD, kept: [OLD] });
      const instance = { app: 'shop', servicePort: 8080, activeEdition: OLD, keptEditions: [OLD], processState: 'running', quiesced: false };
      s.markAgentConnected({ agentId: h.id, host: h.id, group: h.group, labels: {}, bootId: 'boot', version: 'test', instances: [instance] }, this.clock);
    }
  }

  create(spec: Partial<ReleaseSpec>): void {
    this.releaseId = this.engine.createRelease({ app: 'shop', edition: NEW, group: 'all', start: true, ...spec }, 'prop').id;
    this.snapshot();
  }

  get status(): ReleaseStatus {
    return this.store.getRelease(this.releaseId).status;
  }

  /** One generated input: an operator action (refusals are fine, an illegal move is not) or an agent's result. */
  apply(input: Input): void {
    if ('flush' in input) this.flush();
    else if ('route' in input) this.routeAck();
    else if ('op' in input) this.act(input.op);
    else this.agent(input.result, input.pick);
    this.snapshot();
  }

  /** The routers apply every sync asked so far, in order, and ack each. */
  routeAck(): void {
    for (const sync of this.routers?.pending.splice(0) ?? []) {
      this.routersHave = sync.phase;
      sync.applied();
    }
  }

  /** Hands the gathered answers to the engine in one group. */
  flush(): void {
    if (this.gathered.length) this.engine.apply(this.gathered.splice(0));
  }

  private act(action: string): void {
    this.flush();
    try {
      this.engine.act(this.releaseId, action, 'prop', '');
    } catch (err) {
      if (err instanceof IllegalTransitionError) this.violations.push(`${action}: ${err.message}`);
    }
  }

  private agent(result: (typeof AGENT_RESULTS)[number], pick: number): void {
    if (result === 'drained') {
      // Mostly for an instance that was told to quiesce (its drain may be running), sometimes out of the blue.
      const quiesced = this.fleet.sent.filter((s) => s.kind === 'Quiesce').map((s) => s.agentId);
      const ids = pick % 4 === 0 || quiesced.length === 0 ? this.hosts.map((h) => h.id) : quiesced;
      return this.answers.drained('shop', ids[pick % ids.length]!);
    }
    if (result === 'duplicate') return this.duplicate(pick);
    const queue = this.fleet.queue;
    if (queue.length === 0) return;
    const [s] = queue.splice(pick % queue.length, 1) as [Sent];
    // The old edition always comes back: a revert that cannot fail makes the first-batch rule checkable.
    this.flush();
    const reverting = this.store.getRelease(this.releaseId).revert;
    if (result === 'ok' || reverting) return this.reply(s, true);
    if (result === 'failed') return this.reply(s, false);
    // timeout: the agent never answers; time passes beyond every deadline.
    this.fleet.held.push(s);
    this.tick();
  }

  private reply(s: Sent, ok: boolean): void {
    this.answered.push({ s, ok });
    this.fleet.reply(this.answers as ReleaseEngine, s, ok ? { ok: true } : { ok: false, error: 'drill' });
  }

  /** An agent re-sends a result it already sent (a reconnect replay): it must change nothing. */
  private duplicate(pick: number): void {
    this.flush();
    if (this.answered.length === 0) return;
    const { s, ok } = this.answered[pick % this.answered.length]!;
    const sent = this.fleet.sent.length;
    const events = this.eventCount;
    this.engine.commandResult(s.agentId, { commandId: s.command.commandId, ok, error: ok ? '' : 'drill', replayed: true, startedUnixMs: this.clock, finishedUnixMs: this.clock, activeEdition: '', updateOrder: '', instance: undefined });
    if (this.fleet.sent.length !== sent || this.eventCount !== events) this.violations.push(`a replayed result of ${s.kind} ${s.agentId} changed the release`);
  }

  tick(): void {
    this.flush();
    this.clock += LONG_MS;
    this.engine.fireDeadlines();
  }

  /** The fleet keeps answering (ok, drained at once) and the operator passes every gate; true once final. */
  settle(maxRounds = 50): boolean {
    this.fleet.drainedOnQuiesce = true;
    for (let round = 0; round < maxRounds; round++) {
      // Answers come back in turns: what was sent is answered, then handed over (grouped), which sends more.
      while (this.fleet.queue.length || this.routers?.pending.length) {
        while (this.fleet.queue.length) this.reply(this.fleet.queue.shift()!, true);
        this.flush();
        this.routeAck();
      }
      const r = this.store.getRelease(this.releaseId);
      if (isFinalRelease(r.status)) return true;
      // Refused when it does not fit (a cancelled release cannot resume): then only time moves it on.
      if (r.status === 'Suspended' || r.status === 'Suspending') this.act('resume');
      else if (r.waitingFor.startsWith('approval')) this.act('approve');
      else if (r.waitingFor.startsWith('continue')) this.act('continue');
      this.tick();
      this.snapshot();
    }
    return isFinalRelease(this.status);
  }

  /** Each command was delivered once: no command id twice. */
  commandIdsUnique(): boolean {
    const ids = this.fleet.sent.map((s) => s.command.commandId);
    return new Set(ids).size === ids.length;
  }

  close(): void {
    this.engine.stop();
    this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Atomic: once final, the routers were told where the release left them, and nothing is held any more. */
  routesSettled(): string[] {
    if (!this.routers) return [];
    this.routeAck();
    const r = this.store.getRelease(this.releaseId);
    const problems: string[] = [];
    if (r.routePhase === 'first-half') problems.push(`${r.status} with its first half still out of rotation`);
    if (r.status === 'Released' && r.batchCount > 1 && r.routePhase !== 'switched') problems.push(`Released without the switch (route phase '${r.routePhase}')`);
    if (this.routersHave !== r.routePhase) problems.push(`routers apply '${this.routersHave}', the release says '${r.routePhase}'`);
    return problems;
  }

  // ── observing ─────────────────────────────────────────────────────────────

  /** Atomic: a forward step of batch 1 only once the routers hold it out, of batch 2 only once they switched. */
  private checkRouted(commands: PendingCommand[]): void {
    if (!this.routers) return;
    const release = this.store.listReleases('shop')[0];
    if (!release || release.batchCount < 2) return;
    const detail = this.store.getReleaseDetail(release.id);
    for (const c of commands) {
      const kind = commandKind(Command.decode(c.payload));
      const instance = detail.instances.find((i) => i.instance === c.agentId);
      if (!FORWARD_KINDS.has(kind) || !instance || (instance.phase !== 'upgrade' && instance.phase !== 'deploy')) continue;
      const needs = instance.batch === 1 ? 'first-half' : 'switched';
      if (this.routersHave !== needs) this.violations.push(`${kind} to ${c.agentId} (batch ${instance.batch}) while the routers apply '${this.routersHave}'`);
    }
  }

  private observe(reason: string, data: Record<string, unknown>): void {
    this.eventCount++;
    if (reason === RELEASE_EVENTS.statusChanged) {
      const from = String(data.from);
      const known = this.last.get('release') ?? 'To release';
      if (from !== known) this.violations.push(`release moved from ${from} but was ${known}`);
      this.see('release', 'release', String(data.to));
      if (data.to === 'Release failed') this.checkFirstBatchRule();
    } else if (reason === RELEASE_EVENTS.instanceStep) {
      this.see('instance', String(data.instance), String(data.status));
    } else if (reason === RELEASE_EVENTS.batchStarted) {
      this.see('batch', String(data.batch), 'running');
    } else if (reason === RELEASE_EVENTS.batchFinished) {
      this.see('batch', String(data.batch), String(data.status));
    }
  }

  /** Compares the stored statuses with the last seen: catches a change that published nothing. */
  private snapshot(): void {
    if (!this.releaseId) return;
    const detail = this.store.getReleaseDetail(this.releaseId);
    this.see('release', 'release', detail.release.status);
    for (const b of detail.batches) this.see('batch', String(b.number), b.status);
    for (const i of detail.instances) this.see('instance', i.instance, i.status);
  }

  private see(machine: Machine, id: string, to: string): void {
    const key = machine === 'release' ? 'release' : `${machine}:${id}`;
    const from = this.last.get(key) ?? (machine === 'release' ? 'To release' : 'pending');
    this.last.set(key, to);
    if (from !== to) MOVES_SEEN.add(`${machine}: ${from} -> ${to}`);
    if (from === to || canTransition(machine as 'batch', from as never, to as never)) return;
    // A batch enters pending (retry) and waiting (gate) without an event: allow a path through those statuses.
    if (machine === 'batch' && SILENT_BATCH.some((via) => canTransition('batch', from as never, via as never) && (canTransition('batch', via as never, to as never) || SILENT_BATCH.some((v2) => canTransition('batch', via as never, v2 as never) && canTransition('batch', v2 as never, to as never))))) return;
    this.violations.push(`${machine} ${id}: ${from} -> ${to} is not in the table`);
  }

  /** A first batch that fails leaves the old edition active on every instance, once the release has failed. */
  private checkFirstBatchRule(): void {
    const detail = this.store.getReleaseDetail(this.releaseId);
    // A failure (not a cancel or a reject) while batch 1 had not succeeded: nothing may be left on the new edition.
    if (detail.release.stopReason !== 'failed' || detail.batches[0]?.status !== 'failed') return;
    const moved = this.hosts.filter((h) => this.fleet.disk.get(h.id)?.active !== OLD).map((h) => h.id);
    if (moved.length) this.violations.push(`first batch failed but ${moved.join(', ')} run ${NEW}`);
  }
}
