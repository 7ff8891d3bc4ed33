// The release engine's shell: turns every input into a reconcile of the release, then sends and publishes after commit.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { RELEASE_EVENTS, type ReleaseEventReason } from '../../common/events.js';
import type { Logger } from '../../common/logger.js';
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import type { CommandResult } from '../../proto/gen/fleetwave/v1/agent.js';
import type { NewReleaseInput, PendingCommand, ReleaseStore, RouterGate } from '../domain/ports.js';
import type { ReleaseDetailRecord, ReleaseRecord, RoutePhase } from '../domain/records.js';
import { applyAction } from './actions.js';
import { BLOCKED_PREFIX } from './availability.js';
import { previousEdition } from './back-out.js';
import { Pass, type PassOutput } from './pass.js';
import { planBatches } from '../domain/planner.js';
import { reconcilePass } from './reconcile.js';
import { RouterSync } from './router-sync.js';
import { compileReleaseSpec, type CompiledSpec } from '../domain/spec.js';
import { isValidationId } from '../domain/validation.js';

/** Where commands go once committed: the agent service writes them to the agent's stream when it is connected. */
export interface CommandSink {
  deliver(commands: PendingCommand[]): void;
}

/** An input from the fleet: a command's result, a `drained` event (see drained()), the routers' ack of a route phase. */
export type EngineInput =
  | { kind: 'result'; agentId: string; result: CommandResult }
  | { kind: 'drained'; app: string; instance: string; quiesceCommandId?: string; elapsedMs?: number }
  | { kind: 'routed'; releaseId: string; phase: RoutePhase };

/** Where inputs wait before they reach apply(): the controller's inbox (inbox.ts). */
export interface InputQueue {
  submit(input: EngineInput): void;
  flush(): void;
}

/** Publishes a release event (NATS and the dashboard stream). */
export type ReleaseEventPublisher = (app: string, releaseId: string, reason: ReleaseEventReason, data: Record<string, unknown>) => void;

export interface EngineObserver {
  /** A step ended (for the step duration histogram). */
  stepFinished?(step: string, status: string, seconds: number): void;
}

export interface ReleaseEngineOptions {
  store: ReleaseStore;
  sink: CommandSink;
  logger: Logger;
  publish?: ReleaseEventPublisher;
  observer?: EngineObserver;
  /** The routers (the routing hub); absent: atomic releases are refused at creation. */
  router?: RouterGate;
  /** Injectable clock (tests); Date.now by default. */
  now?: () => number;
  /** Injectable command ids (tests); randomUUID by default. */
  newId?: () => string;
}

/** Shortest timer delay, so a deadline reconcile could not clear never spins the process. */
const MIN_TIMER_MS = 5;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A deadline timer firing this much after its time finds the event loop busy (see armTimer). */
const LATE_TIMER_MS = 10;

export class ReleaseEngine {
  private readonly store: ReleaseStore;
  private readonly sink: CommandSink;
  private readonly log: Logger;
  private readonly publish: ReleaseEventPublisher;
  private readonly observer: EngineObserver;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly changes = new EventEmitter();
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | null = null;
  private running = false;
  private flushInputs: () => void = () => {};
  /** Where the engine's own inputs go (the routers' acks): the inbox once attached, else straight to apply(). */
  private submit: (input: EngineInput) => void = (input) => this.apply([input]);
  /** Syncs with the routers after a commit and hands their acks back (atomic releases). */
  private readonly routers: RouterSync;
  /** Validations whose commands (a clone's StopApp) got a result in the apply() under way; told after its commit. */
  private answeredValidations = new Set<string>();
  /** Set while waking blocked releases, so their passes do not wake each other in turn. */
  private waking = false;

  constructor(options: ReleaseEngineOptions) {
    this.store = options.store;
    this.sink = options.sink;
    this.log = options.logger;
    this.publish = options.publish ?? (() => {});
    this.observer = options.observer ?? {};
    this.routers = new RouterSync(options.router, this.log, (input) => this.submit(input));
    this.now = options.now ?? (() => Date.now());
    this.newId = options.newId ?? (() => randomUUID());
    this.changes.setMaxListeners(0);
  }

  /**
   * Reconciles every active release (catching up after a restart) and arms the deadline timer. A release held at a
   * router gate asks its routers again (a sync is idempotent): whatever they applied before the restart, it moves on
   * once they ack.
   */
  start(): void {
    this.running = true;
    for (const id of this.store.activeReleaseIds()) this.reconcile(id);
    this.armTimer();
  }

  stop(): void {
    this.running = false;
    this.routers.forget();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = null;
  }

  /**
   * Calls `listener(validationId)` after a result of a command a validation owns (its clone's StopApp) was committed;
   * returns the unsubscribe function.
   */
  onValidationCommandAnswered(listener: (validationId: string) => void): () => void {
    this.changes.on('validation', listener);
    return () => this.changes.off('validation', listener);
  }

  /** Calls `listener(releaseId)` after every committed change of a release; returns the unsubscribe function. */
  onReleaseChanged(listener: (releaseId: string) => void): () => void {
    this.changes.on('changed', listener);
    return () => this.changes.off('changed', listener);
  }

  // ── inputs ────────────────────────────────────────────────────────────────

  /** Creates (and by default starts) a release; a refused create is recorded in the app's history, then rethrown. */
  createRelease(raw: Partial<ReleaseSpec>, actor: string): ReleaseRecord {
    return this.recordingRefusal(raw.app ?? '', actor, 'create', '', () => this.createFromSpec(compileReleaseSpec(raw), actor));
  }

  /** Creates a release from a spec the controller compiled itself (validation mode); a refused create is recorded. */
  createCompiledRelease(spec: CompiledSpec, actor: string, action = 'create'): ReleaseRecord {
    return this.recordingRefusal(spec.app, actor, action, '', () => this.createFromSpec(spec, actor));
  }

  /**
   * Back-out: releases the edition that was active before the app's newest Released release (of `group`,
   * or any group when empty), with that release's policy; the agents still keep it, so nothing is downloaded.
   */
  backOut(app: string, group: string, actor: string, comment: string): ReleaseRecord {
    return this.recordingRefusal(app, actor, 'back-out', comment, () => this.backOutOf(app, group, actor, comment));
  }

  private backOutOf(app: string, group: string, actor: string, comment: string): ReleaseRecord {
    this.store.getApp(app);
    const wanted = group.trim();
    // A group nobody is in is a bad name (rc 2); a real group with nothing to back out is refused (rc 1).
    if (wanted && !this.store.listInstances(app).some((i) => i.group === wanted)) {
      throw new NotFoundError(`group '${wanted}' has no instance of app '${app}'`);
    }
    const last = this.store.listReleases(app).find((r) => r.status === 'Released' && (wanted === '' || r.group === wanted));
    if (!last) throw new ConflictError(`app '${app}' has no Released release${wanted ? ` for group '${wanted}'` : ''} to back out`);
    const detail = this.store.getReleaseDetail(last.id);
    const edition = previousEdition(detail.instances, last.edition);
    if (!edition) throw new ConflictError(`release ${last.id} deployed ${last.edition} to instances that ran no edition before; nothing to back out to`);
    // A back-out is the emergency exit: routing rules that name the edition it leaves never block it (they fall back to the default).
    const spec: CompiledSpec = { ...last.spec, edition, start: false, force: true };
    const release = this.createFromSpec(spec, actor);
    this.store.recordChange({
      atUnixMs: this.now(),
      actor,
      action: 'back-out',
      app,
      releaseId: release.id,
      comment,
      result: `backs out ${last.id}: ${last.edition} → ${edition} on group ${spec.group}`,
    });
    this.act(release.id, 'start', actor, comment);
    return this.store.getRelease(release.id);
  }

  private createFromSpec(spec: CompiledSpec, actor: string): ReleaseRecord {
    const release = this.store.createRelease({
      id: `r-${this.newId().slice(0, 8)}`,
      spec,
      actor,
      now: this.now(),
      plan: this.planFor(spec),
    });
    this.log.info({ release: release.id, app: release.app, edition: release.edition, group: release.group, actor }, 'release created');
    this.publishCreated(release);
    this.changes.emit('changed', release.id);
    if (spec.start) this.act(release.id, 'start', actor, '');
    return this.store.getRelease(release.id);
  }

  /** The planner's part of a create: the batches of the spec's target, checked as the release will run. */
  private planFor(spec: CompiledSpec): NewReleaseInput['plan'] {
    return ({ instances }) => {
      // A validation clone named by instance releases to those alone.
      const chosen = spec.instances ? instances.filter((i) => spec.instances!.includes(i.agentId)) : instances;
      const batches = planBatches(spec, chosen.map((i) => ({ id: i.agentId, group: i.group })));
      if (spec.strategy === 'atomic') this.routers.requireRouters(spec.app);
      return batches;
    };
  }

  /**
   * Dry run of createRelease: the release it would create (the real planner over the real instances, every check of a
   * create), rolled back before anything is sent, published or logged as created. Its id is empty.
   */
  planRelease(raw: Partial<ReleaseSpec>, actor: string): ReleaseDetailRecord {
    const spec = compileReleaseSpec(raw);
    const detail = this.store.rehearse(() => {
      const release = this.store.createRelease({ id: 'dry-run', spec, actor, now: this.now(), plan: this.planFor(spec) });
      return this.store.getReleaseDetail(release.id);
    });
    return { ...detail, release: { ...detail.release, id: '' }, changes: [] };
  }

  /** The plan, before any status change, so a dashboard can draw every batch from the events alone. */
  private publishCreated(release: ReleaseRecord): void {
    const batches = this.store.getReleaseDetail(release.id).batches.map((b) => ({ batch: b.number, group: b.group, instances: b.instances }));
    this.publish(release.app, release.id, RELEASE_EVENTS.created, {
      edition: release.edition,
      group: release.group,
      status: release.status,
      createdBy: release.createdBy,
      batches,
    });
  }

  /** An operator action; refused actions are recorded too, then rethrown. */
  act(releaseId: string, action: string, actor: string, comment: string, options: { batches?: number } = {}): string {
    try {
      let result = '';
      this.runPass(releaseId, (pass) => {
        result = applyAction(pass, { action, actor, comment, batches: options.batches });
      });
      this.log.info({ release: releaseId, action, actor, result }, 'release action');
      return result;
    } catch (err) {
      const release = this.tryGetRelease(releaseId);
      if (release) {
        const message = err instanceof Error ? err.message : String(err);
        this.store.recordChange({ atUnixMs: this.now(), actor, action, app: release.app, releaseId, comment, result: `refused: ${message}` });
      }
      throw err;
    }
  }

  reconcile(releaseId: string, before: (pass: Pass) => void = () => {}): void {
    try {
      this.runPass(releaseId, before);
    } catch (err) {
      this.log.error({ err, release: releaseId }, 'reconcile failed');
    }
  }

  commandResult(agentId: string, result: CommandResult): void {
    this.apply([{ kind: 'result', agentId, result }]);
  }

  /**
   * The agent published `drained` for the instance (possibly before its Quiesce result); `elapsedMs` is its own
   * measure of the drain (ineligible until in flight reached 0), which times the drain apart from the quiesce.
   */
  drained(app: string, instance: string, quiesceCommandId = '', elapsedMs?: number): void {
    this.apply([{ kind: 'drained', app, instance, quiesceCommandId, elapsedMs }]);
  }

  /**
   * Inputs that arrived together (one turn of the event loop): recorded, then one pass per release they touch, all in
   * one transaction; commands go out and events are published once it committed. Equivalent to handling them one by
   * one, at the cost of one pass per release instead of one per input.
   */
  apply(inputs: EngineInput[]): void {
    const passes = new Map<string, { drains: Map<string, number>; routed: Set<RoutePhase> }>();
    const committed: Array<() => void> = [];
    try {
      this.store.batch(() => {
        for (const input of inputs) {
          const releaseId = this.record(input);
          if (!releaseId) continue;
          const got = passes.get(releaseId) ?? { drains: new Map<string, number>(), routed: new Set<RoutePhase>() };
          passes.set(releaseId, got);
          const ms = input.kind === 'drained' ? input.elapsedMs : undefined;
          if (input.kind === 'drained' && ms !== undefined && Number.isFinite(ms) && ms >= 0) got.drains.set(input.instance, ms);
          if (input.kind === 'routed') got.routed.add(input.phase);
        }
        for (const [releaseId, got] of passes) {
          try {
            committed.push(
              this.pass(releaseId, (pass) => {
                for (const [instance, ms] of got.drains) pass.drainElapsedMs.set(instance, ms);
                // An ack of an older phase (the release moved on since) passes nothing.
                const phase = pass.release.routePhase;
                if (phase !== '' && got.routed.has(phase)) pass.routeApplied = phase;
              }),
            );
          } catch (err) {
            // This release's pass rolled back alone (a savepoint); the others and the recorded inputs stand.
            this.log.error({ err, release: releaseId }, 'reconcile failed');
          }
        }
      });
    } catch (err) {
      this.log.error({ err, inputs: inputs.length }, 'recording inputs failed');
      this.answeredValidations.clear();
      return;
    }
    for (const after of committed) after();
    const answered = [...this.answeredValidations];
    this.answeredValidations.clear();
    for (const id of answered) this.changes.emit('validation', id);
  }

  /** Records an input; returns the release to reconcile, or null when there is nothing to do. */
  private record(input: EngineInput): string | null {
    switch (input.kind) {
      case 'result':
        return this.recordResult(input.agentId, input.result);
      case 'drained':
        return this.store.recordDrained(input.app, input.instance, input.quiesceCommandId);
      case 'routed':
        return input.releaseId;
    }
  }

  /** Records a command's result; returns the release to reconcile, or null when there is nothing to do. */
  private recordResult(agentId: string, result: CommandResult): string | null {
    const recorded = this.store.recordCommandResult(agentId, result.commandId, {
      ok: result.ok,
      error: result.error,
      finishedUnixMs: result.finishedUnixMs || this.now(),
      activeEdition: result.activeEdition,
      ...(result.updateOrder ? { updateOrder: result.updateOrder } : {}),
      instance: result.instance && {
        activeEdition: result.instance.activeEdition,
        keptEditions: result.instance.keptEditions,
        processState: result.instance.processState,
        quiesced: result.instance.quiesced,
      },
    });
    if (!recorded) {
      this.log.debug({ agent: agentId, command: result.commandId }, 'result for an unknown or finished command ignored');
      return null;
    }
    this.log.debug({ agent: agentId, command: result.commandId, kind: recorded.kind, ok: result.ok }, 'command result');
    if (isValidationId(recorded.releaseId)) {
      this.answeredValidations.add(recorded.releaseId);
      return null;
    }
    return recorded.releaseId;
  }

  /**
   * Where inputs wait before they reach apply() (the controller's inbox): handed over before any deadline is judged,
   * so a step whose result already arrived is never timed out because the controller was busy. The engine's own
   * inputs (the routers' acks) queue there too, behind what arrived before them.
   */
  attachInbox(inbox: InputQueue): void {
    this.flushInputs = () => inbox.flush();
    this.submit = (input) => inbox.submit(input);
  }

  /** Deadlines due now: drains end, steps time out, waiting batches start; the results already in count first. */
  fireDeadlines(): void {
    this.timer = undefined;
    this.timerAt = null;
    this.flushInputs();
    for (const id of this.store.releasesDue(this.now())) this.reconcile(id);
    this.armTimer();
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private runPass(releaseId: string, before: (pass: Pass) => void): void {
    this.pass(releaseId, before)();
  }

  /** One committed pass (or savepoint, inside apply()); returns what to do once it is committed. */
  private pass(releaseId: string, before: (pass: Pass) => void): () => void {
    const at = this.now();
    const { snapshot, output } = this.store.reconcileRelease(releaseId, (snap) => {
      const pass = new Pass(snap, at, this.newId);
      before(pass);
      reconcilePass(pass);
      return pass.out;
    });
    const release = snapshot.release;
    return () => this.afterCommit(release, output);
  }

  private afterCommit(release: ReleaseRecord, out: PassOutput): void {
    if (out.commands.length) {
      this.sink.deliver(out.commands.map((c) => ({ commandId: c.commandId, agentId: c.agentId, payload: c.payload })));
    }
    for (const event of out.events) {
      this.log.debug({ release: release.id, reason: event.reason, ...event.data }, 'release event');
      this.publish(release.app, release.id, event.reason, event.data);
    }
    for (const step of out.steps) {
      if (step.op === 'end') this.observer.stepFinished?.(step.step, step.status, Math.max(0, step.at - step.startedAt) / 1000);
    }
    if (out.routers) this.routers.afterCommit(release, out.routers);
    const changed = out.events.length > 0 || out.commands.length > 0 || out.changes.length > 0 || out.steps.length > 0;
    if (changed) this.changes.emit('changed', release.id);
    if (changed) this.wakeBlocked(release);
    this.armTimer();
  }

  /** Releases of the same app held by max-unavailable may go on once this one moved (an instance came back). */
  private wakeBlocked(release: ReleaseRecord): void {
    if (this.waking) return;
    this.waking = true;
    try {
      for (const id of this.store.releasesWaitingFor(release.app, BLOCKED_PREFIX)) {
        if (id !== release.id) this.reconcile(id);
      }
    } finally {
      this.waking = false;
    }
  }

  private armTimer(): void {
    if (!this.running) return;
    const next = this.store.nextDeadline();
    if (next === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === null) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(MIN_TIMER_MS, next - this.now()));
    this.timer = setTimeout(() => {
      // A timer that fires late means a busy event loop, and results may wait unread in the sockets: they are read
      // first (setImmediate follows the poll phase) and reach the inbox, which fireDeadlines hands over before judging.
      if (this.now() - next > LATE_TIMER_MS) setImmediate(() => this.running && this.fireDeadlines());
      else this.fireDeadlines();
    }, delay);
    this.timer.unref?.();
  }

  /**
   * Runs `fn`; when it throws, writes a change record "refused: <reason>" for the app and rethrows. The record
   * has its own transaction, after `fn`'s was rolled back. An app that does not exist has no history to write to.
   */
  private recordingRefusal<T>(app: string, actor: string, action: string, comment: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (this.store.hasApp(app)) {
        const message = err instanceof Error ? err.message : String(err);
        this.store.recordChange({ atUnixMs: this.now(), actor, action, app, releaseId: '', comment, result: `refused: ${message}` });
      }
      throw err;
    }
  }

  private tryGetRelease(id: string): ReleaseRecord | null {
    try {
      return this.store.getRelease(id);
    } catch {
      return null;
    }
  }
}
