// The context of one reconcile pass over a release, and the only setters that change its statuses and steps.
import type { ReleaseEventReason } from '../../common/events.js';
import { RELEASE_EVENTS } from '../../common/events.js';
import type {
  BatchRecord,
  ChangeRecordRow,
  ReconcileOutput,
  ReleaseInstanceRecord,
  ReleaseSnapshot,
  RoutePhase,
  StepName,
  StepPhase,
} from '../domain/records.js';
import { commandKind, encodeCommand, stepCommand, stepTimeout } from './commands.js';
import { plannedOrder } from './update-order.js';
import { isFinalRelease, transition, type BatchStatus, type InstanceStatus, type ReleaseStatus } from '../domain/transitions.js';

export interface ReleaseEventOut {
  reason: ReleaseEventReason;
  data: Record<string, unknown>;
}

export interface PassOutput extends ReconcileOutput {
  /** Release events to publish once the pass is committed. */
  events: ReleaseEventOut[];
  /**
   * The routers, once the pass is committed (atomic releases, router-gates.ts). `changed`: what they compute for the
   * app changed (route phase, the release ended or rolls back): sync now. `wait`: the release is held at a router gate
   * until they applied its route phase: sync unless a sync of that phase is in flight, and hand their ack back.
   */
  routers?: { changed: boolean; wait: boolean };
}

export class Pass {
  /** Time of the pass: every timestamp and deadline it writes derives from it. */
  readonly now: number;
  /** The release, its batches and instances, changed in place; the store persists what changed. */
  readonly s: ReleaseSnapshot;
  /** Commands (outbox), step rows, change records and events decided so far. */
  readonly out: PassOutput = { commands: [], abandoned: [], steps: [], changes: [], events: [] };
  /** Set by every setter; reconcile loops until a round changes nothing. */
  changed = false;
  /**
   * Drains that ended in the input of this pass: instance → the agent's own `drained.elapsedMs` (ineligible until in
   * flight reached 0), so a drain whose event beat the Quiesce result is still timed apart from the quiesce.
   */
  readonly drainElapsedMs = new Map<string, number>();
  /** The route phase the routers acked in the input of this pass (atomic releases, router-gates.ts), or null. */
  routeApplied: RoutePhase | null = null;
  /** Set by a router gate that holds the release in this round (reconcile resets it each round). */
  routerHold = false;
  /** What the routers compute for the app changed in this pass (route phase, end, rollback). */
  routesChanged = false;
  /** Makes command ids (randomUUID in production, a counter in tests). */
  private readonly newId: () => string;
  /** Per batch: members still pending without their package (null until first asked; kept exact by the setters). */
  private undownloaded: Map<number, number> | null = null;

  constructor(snapshot: ReleaseSnapshot, now: number, newId: () => string) {
    this.s = snapshot;
    this.now = now;
    this.newId = newId;
    this.out.touched = { instances: new Set(), all: false };
  }

  get release() {
    return this.s.release;
  }

  /** True once a failure or a cancel stopped the release from moving forward. */
  get stopping(): boolean {
    return this.s.release.stopReason !== null;
  }

  membersOf(batch: BatchRecord): ReleaseInstanceRecord[] {
    return membersByBatch(this.s.instances).get(batch.number) ?? [];
  }

  /** Members of batch `number` still pending without the package (a batch moves once this is 0). */
  waitingForPackage(number: number): number {
    if (!this.undownloaded) {
      this.undownloaded = new Map();
      for (const i of this.s.instances) if (awaitsPackage(i)) this.undownloaded.set(i.batch, (this.undownloaded.get(i.batch) ?? 0) + 1);
    }
    return this.undownloaded.get(number) ?? 0;
  }

  /** The instance has the edition on its host (downloaded, or kept from before). */
  markDownloaded(instance: ReleaseInstanceRecord): void {
    this.countPackage(instance, () => (instance.downloaded = true));
    this.touch(instance);
  }

  batchOf(instance: ReleaseInstanceRecord): BatchRecord {
    return this.s.batches.find((b) => b.number === instance.batch)!;
  }

  setReleaseStatus(to: ReleaseStatus, message?: string): void {
    const r = this.s.release;
    const from = r.status;
    r.status = transition('release', from, to);
    if (message !== undefined) r.message = message;
    r.updatedUnixMs = this.now;
    if (isFinalRelease(to)) r.finishedUnixMs = this.now;
    this.changed = true;
    this.emit(RELEASE_EVENTS.statusChanged, { from, to, message: r.message, edition: r.edition });
  }

  /** What the release waits for, in the operator's words ('' for nothing). */
  setWaitingFor(text: string): void {
    if (this.s.release.waitingFor === text) return;
    this.s.release.waitingFor = text;
    this.touch();
  }

  /** The one setter of an atomic release's route phase; the routers learn it once the pass is committed. */
  setRoutePhase(to: RoutePhase): void {
    if (this.s.release.routePhase === to) return;
    this.s.release.routePhase = to;
    this.routesChanged = true;
    this.touch();
  }

  setBatchStatus(batch: BatchRecord, to: BatchStatus): void {
    batch.status = transition('batch', batch.status, to);
    if (to === 'running') batch.startedUnixMs = this.now;
    if (to === 'done' || to === 'failed') batch.finishedUnixMs = this.now;
    this.touch();
    if (to === 'running') this.emit(RELEASE_EVENTS.batchStarted, this.batchData(batch));
    if (to === 'done' || to === 'failed') {
      const failed = this.membersOf(batch).filter((i) => i.status === 'failed' || i.status === 'unreachable');
      this.emit(RELEASE_EVENTS.batchFinished, { ...this.batchData(batch), status: to, failed: failed.map((i) => i.instance) });
    }
  }

  setInstanceStatus(instance: ReleaseInstanceRecord, to: InstanceStatus, error?: string): void {
    this.countPackage(instance, () => (instance.status = transition('instance', instance.status, to)));
    if (error !== undefined) instance.error = error;
    this.touch(instance);
    // A move to failed or unreachable is the outcome of a failed step: the event says so, with why.
    const stepStatus = instance.stepState === 'running' ? 'running' : isFailure(to) ? 'failed' : 'ok';
    // A rolled-back instance's message says where it went back to; one on its way carries no error.
    this.emitStep(instance, stepStatus, isFailure(to) || to === 'rolled back' ? instance.error : '');
  }

  /** Starts a step: enqueues its command (if it has one) and persists its deadline; `at` backdates it (a drain that began earlier). */
  beginStep(instance: ReleaseInstanceRecord, step: StepName, targetEdition?: string, at = this.now): void {
    const order = plannedOrder(this.s.app, this.s.release.spec);
    const deadline = at + stepTimeout(step, this.s.release.spec, order);
    const commandId = step === 'drain' ? null : this.newId();
    if (commandId) {
      const command = stepCommand(step, {
        commandId,
        releaseId: this.s.release.id,
        app: this.s.app,
        // A rollback may download the old edition when the agent no longer keeps it.
        edition: (step === 'download' && targetEdition && this.s.editions[targetEdition]) || this.s.edition,
        spec: this.s.release.spec,
        deadlineUnixMs: deadline,
        targetEdition,
        updateOrder: order,
      })!;
      this.out.commands.push({
        commandId,
        agentId: instance.instance,
        releaseId: this.s.release.id,
        instance: instance.instance,
        kind: commandKind(command),
        payload: encodeCommand(command),
        createdUnixMs: this.now,
      });
    }
    if (step === 'quiesce') {
      instance.drained = false;
      if (instance.moved === 'none') instance.moved = 'quiesced';
    }
    if (step === 'restart' || step === 'hard-reset' || step === 'start') instance.moved = 'switched';
    instance.step = step;
    instance.stepState = 'running';
    instance.stepStartedUnixMs = at;
    instance.commandId = commandId;
    instance.deadlineUnixMs = deadline;
    this.out.steps.push({ op: 'start', instance: instance.instance, step, phase: stepPhase(instance), at });
    this.touch(instance);
    this.emitStep(instance, 'running', this.standingError(instance));
  }

  /** Records a step that had nothing to do (e.g. a download of a kept edition) in the timeline, with why. */
  skipStep(instance: ReleaseInstanceRecord, step: StepName, note: string): void {
    this.out.steps.push({ op: 'start', instance: instance.instance, step, phase: stepPhase(instance), at: this.now });
    this.out.steps.push({ op: 'end', instance: instance.instance, step, status: 'ok', at: this.now, error: note, startedAt: this.now });
    this.touch(instance);
  }

  /** Ends the running step; `ok` leaves it `done` for the next step to follow; `at` backdates the end (never before its start). */
  finishStep(instance: ReleaseInstanceRecord, status: 'ok' | 'failed', error = '', at = this.now): void {
    const startedAt = instance.stepStartedUnixMs;
    const end = Math.max(at, startedAt);
    this.out.steps.push({ op: 'end', instance: instance.instance, step: instance.step, status, at: end, error, startedAt });
    instance.stepState = status === 'ok' ? 'done' : '';
    instance.commandId = null;
    instance.deadlineUnixMs = null;
    this.touch(instance);
    this.emitStep(instance, status, error || this.standingError(instance), end - startedAt);
  }

  /** A step of a failed (or unreachable) instance still carries its failure; others carry none. */
  private standingError(instance: ReleaseInstanceRecord): string {
    return isFailure(instance.status) ? instance.error : '';
  }

  /** `durationMs`: how long a step that just ended took (only on its end). */
  private emitStep(instance: ReleaseInstanceRecord, stepStatus: 'running' | 'ok' | 'failed', error: string, durationMs?: number): void {
    this.emit(RELEASE_EVENTS.instanceStep, {
      instance: instance.instance,
      batch: instance.batch,
      step: instance.step,
      phase: stepPhase(instance),
      stepStatus,
      status: instance.status,
      error,
      // The order the agent used for its restart (start-first, or a stop-first fallback), once known.
      ...(instance.updateOrder ? { updateOrder: instance.updateOrder } : {}),
      ...(durationMs === undefined ? {} : { durationMs }),
    });
  }

  /** The controller gives up on a command: marked done in the outbox so it is never re-sent. */
  abandon(commandId: string, reason: string): void {
    this.out.abandoned.push({ commandId, reason });
  }

  recordChange(change: Omit<ChangeRecordRow, 'atUnixMs' | 'app' | 'releaseId'>): void {
    this.out.changes.push({ ...change, atUnixMs: this.now, app: this.s.release.app, releaseId: this.s.release.id });
  }

  emit(reason: ReleaseEventReason, data: Record<string, unknown>): void {
    this.out.events.push({ reason, data });
  }

  /** Something changed; `instance`: its row is among what the store writes. */
  touch(instance?: ReleaseInstanceRecord): void {
    this.s.release.updatedUnixMs = this.now;
    this.changed = true;
    if (instance) this.out.touched!.instances.add(instance);
  }

  /** A change to (possibly) every instance: the store compares every row, as a rollback plan or a retry needs. */
  touchAll(): void {
    this.out.touched!.all = true;
    this.touch();
  }

  /** Runs `change` on the instance, keeping the count of members waiting for their package exact. */
  private countPackage(instance: ReleaseInstanceRecord, change: () => void): void {
    const before = awaitsPackage(instance);
    change();
    const after = awaitsPackage(instance);
    if (before === after || !this.undownloaded) return;
    this.undownloaded.set(instance.batch, (this.undownloaded.get(instance.batch) ?? 0) + (after ? 1 : -1));
  }

  private batchData(batch: BatchRecord): Record<string, unknown> {
    return { batch: batch.number, batches: this.s.batches.length, group: batch.group, instances: batch.instances };
  }
}

/** Pending and without the package: its batch waits for it. */
function awaitsPackage(i: ReleaseInstanceRecord): boolean {
  return i.status === 'pending' && !i.downloaded;
}

/** Instances by batch number, built once per instance list (a release's list lives as long as the store keeps it). */
const batchIndex = new WeakMap<ReleaseInstanceRecord[], Map<number, ReleaseInstanceRecord[]>>();

function membersByBatch(instances: ReleaseInstanceRecord[]): Map<number, ReleaseInstanceRecord[]> {
  let index = batchIndex.get(instances);
  if (!index) {
    index = new Map();
    for (const i of instances) {
      const members = index.get(i.batch);
      if (members) members.push(i);
      else index.set(i.batch, [i]);
    }
    batchIndex.set(instances, index);
  }
  return index;
}

/** The pipeline the instance's step runs in; a finished rollback's last step still belongs to the rollback. */
function stepPhase(instance: ReleaseInstanceRecord): StepPhase {
  return instance.phase === 'rollback-ended' ? 'rollback' : instance.phase;
}

function isFailure(status: InstanceStatus): boolean {
  return status === 'failed' || status === 'unreachable';
}
