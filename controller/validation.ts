// Validation mode (docs/validation.md): a validation clone of a target, its rule, the rollout from it and its removal;
// also the clone operation (an app's default edition copied onto a group). Each step is one store transaction with
// its change record; the lifecycle's moves are decided by nextValidationStep (controller/domain/validation.ts).
import { randomUUID } from 'node:crypto';
import { BadInputError, ConflictError, NotFoundError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { ReleaseSpec, ValidateEditionRequest } from '../proto/gen/fleetwave/v1/admin.js';
import type { Command } from '../proto/gen/fleetwave/v1/agent.js';
import type { RouterGate } from './domain/ports.js';
import type { ReleaseRecord } from './domain/records.js';
import { percentTotal, sameMatch, validateRoute, describeMatch, type RouteRecord } from './domain/routing.js';
import { compileReleaseSpec, type CompiledSpec } from './domain/spec.js';
import { cloneInstances, nextValidationStep, VALIDATION_ID_PREFIX } from './domain/validation.js';
import { encodeCommand } from './engine/commands.js';
import type { CommandSink, ReleaseEngine } from './engine/engine.js';
import type { Store } from './store/store.js';
import type { CloneCommand, ValidationRecord } from './store/validations.js';

export interface ValidationManagerOptions {
  store: Store;
  engine: ReleaseEngine;
  /** Where the clone's StopApp commands go once committed (the agent sessions). */
  sink: CommandSink;
  /** Told after every rule change (the routing hub). */
  kick: (app: string) => void;
  /** The routers: a quiesced clone is drained at every router before its app stops. Absent: no router to wait for. */
  router?: RouterGate;
  logger: Logger;
  now?: () => number;
  newId?: () => string;
}

/** Environment variable names the overrides may set. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** How long a clone's StopApp may wait for an agent that is away, beyond the app's own stop timeout. */
const STOP_GRACE_MS = 10 * 60_000;
/** Longest a clone instance drains its in-flight requests before its app stops. */
const REMOVAL_DRAIN_MS = 10_000;

export class ValidationManager {
  private readonly store: Store;
  private readonly engine: ReleaseEngine;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly newId: () => string;
  /** Validations to look at again on the next turn (a release of theirs changed); one look per turn each. */
  private readonly due = new Set<string>();
  private scheduled = false;
  private stopped = false;
  /** Removals whose quiesced clone the routers were asked to drain (in memory: after a restart they are asked again). */
  private readonly drainedAtRouters = new Set<string>();

  constructor(private readonly o: ValidationManagerOptions) {
    this.store = o.store;
    this.engine = o.engine;
    this.log = o.logger;
    this.now = o.now ?? (() => Date.now());
    this.newId = o.newId ?? (() => randomUUID());
  }

  /** Catches up after a restart: every validation in progress is looked at once; then follows its releases. */
  start(): void {
    this.engine.onReleaseChanged((id) => this.releaseChanged(id));
    this.engine.onValidationCommandAnswered((id) => this.finishRemoval(id));
    for (const v of this.store.validations.allInProgress()) this.schedule(v.id);
  }

  stop(): void {
    this.stopped = true;
  }

  // ── operator verbs ──────────────────────────────────────────────────────────

  /** `edition validate APP EDITION --target G (--group C | --on I…) --route KIND:MATCH [--env K=V…]`. */
  validate(req: ValidateEditionRequest, actor: string): ValidationRecord {
    const app = req.app.trim();
    return this.recordingRefusal(app, actor, 'validate', req.comment, () => {
      const v = this.checkValidate(req, app, actor);
      const cloneSpec = this.cloneSpec(v);
      const release = this.store.transaction(() => {
        this.store.validations.insert(v);
        const release = this.engine.createCompiledRelease(cloneSpec, actor);
        this.store.validations.setRelease(v.id, 'release', release.id);
        const where = v.cloneGroup ? `group ${v.cloneGroup}` : 'instances';
        const env = Object.keys(v.env).length ? `, env ${Object.entries(v.env).map(([k, x]) => `${k}=${x}`).join(' ')}` : '';
        this.store.recordChange({
          atUnixMs: this.now(), actor, action: 'validate', app, releaseId: release.id, comment: req.comment,
          result: `validation ${v.id}: edition ${v.edition} on a clone of ${v.targetGroup} (${where} ${v.cloneInstances.join(' ')}${env}); release ${release.id}, then rule ${describeMatch(v.route)}`,
        });
        return release;
      });
      this.log.info({ validation: v.id, app, edition: v.edition, release: release.id, actor }, 'validation created');
      this.engine.act(release.id, 'start', actor, `validation ${v.id}`);
      return this.store.validations.get(v.id);
    });
  }

  /** `edition validate APP --cancel`: the clone removed without a rollout (rule removed, its app stopped). */
  cancel(appName: string, actor: string, comment: string): ValidationRecord {
    const app = appName.trim();
    return this.recordingRefusal(app, actor, 'validation-cancel', comment, () => {
      this.store.getApp(app);
      const v = this.store.validations.inProgress(app);
      if (!v) throw new ConflictError(`app '${app}' has no validation in progress`);
      if (v.status === 'activating') throw new ConflictError(`validation ${v.id}: its release ${v.releaseId} to the clone is still under way; wait for it to end, or roll it back`);
      if (v.status === 'rolling-out') throw new ConflictError(`validation ${v.id}: release ${v.rolloutReleaseId} rolls it out; the clone goes once it is Released`);
      if (v.status === 'removing') throw new ConflictError(`validation ${v.id} is already being removed`);
      return this.beginRemoval(v, 'cancelled', actor, comment);
    });
  }

  /**
   * `release create APP --from-validation` and `--operation clone --to G`; any other spec is not ours (null). A
   * refused one is recorded as the engine records a refused create.
   */
  createRelease(raw: Partial<ReleaseSpec>, actor: string): ReleaseRecord | null {
    const operation = (raw.operation ?? '').trim();
    if (!raw.fromValidation && operation === '') return null;
    const app = (raw.app ?? '').trim();
    return this.recordingRefusal(app, actor, 'create', '', () => {
      if (raw.fromValidation && operation) throw new BadInputError('release: --from-validation and --operation do not go together');
      if (raw.fromValidation) return this.rollOut(raw, app, actor);
      if (operation !== 'clone') throw new BadInputError(`release: operation must be clone (got '${operation}')`);
      return this.cloneOperation(raw, app, actor);
    });
  }

  // ── following the releases ──────────────────────────────────────────────────

  /** A release changed: its validation (if any) is looked at on the next turn, never inside the engine's pass. */
  releaseChanged(releaseId: string): void {
    const v = this.store.validations.ofRelease(releaseId);
    if (v) this.schedule(v.id);
  }

  private schedule(id: string): void {
    this.due.add(id);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const ids = [...this.due];
      this.due.clear();
      if (this.stopped) return;
      for (const id of ids) this.advance(id);
    });
  }

  /** Takes the validation's next step, if its releases call for one. */
  advance(id: string): void {
    try {
      const v = this.store.validations.get(id);
      const status = (releaseId: string) => (releaseId ? this.store.getRelease(releaseId).status : '');
      const step = nextValidationStep(v.status, status(v.releaseId), status(v.rolloutReleaseId));
      const by = { atUnixMs: this.now(), actor: 'controller', comment: '' };
      switch (step.kind) {
        case 'none':
          if (v.status === 'removing') this.finishRemoval(v.id);
          return;
        case 'start-release':
          this.engine.act(v.releaseId, 'start', 'controller', `validation ${v.id}`);
          return;
        case 'add-rule':
          return this.addRule(v);
        case 'activation-failed':
          this.store.validations.move(v.id, 'activation-failed', `release ${v.releaseId} to the clone ended ${step.releaseStatus}; retry it, or cancel the validation`, by);
          return;
        case 'rollout-ended':
          this.store.validations.move(v.id, 'validating', `release ${v.rolloutReleaseId} ended ${step.releaseStatus}; the clone and its rule stay`, by);
          return;
        case 'remove':
          this.beginRemoval(v, 'done', 'controller', `release ${v.rolloutReleaseId} is Released`);
          return;
      }
    } catch (err) {
      this.log.error({ err, validation: id }, 'validation step failed');
    }
  }

  private addRule(v: ValidationRecord): void {
    const at = this.now();
    const route: RouteRecord = { id: `rt-${this.newId().slice(0, 8)}`, app: v.app, edition: v.edition, ...v.route, priority: 0, createdUnixMs: at, createdBy: v.createdBy };
    try {
      this.store.validations.addRule(v.id, route, { atUnixMs: at, actor: v.createdBy, comment: `validation ${v.id}` });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.store.validations.move(v.id, 'activation-failed', `its rule was refused: ${reason}`, { atUnixMs: at, actor: 'controller', comment: '' });
      return;
    }
    this.log.info({ validation: v.id, app: v.app, route: route.id }, 'validation rule added');
    this.o.kick(v.app);
  }

  /**
   * Rule removed and a Quiesce to each clone instance, committed together, then sent; once they answered, StopApp to
   * each (advanceRemoval). Quiescing first drains the clone at the routers before its app stops: while a rollout moves
   * the default to the clone's edition, the clone serves default traffic too.
   */
  private beginRemoval(v: ValidationRecord, outcome: 'done' | 'cancelled', actor: string, comment: string): ValidationRecord {
    const present = new Set(this.store.listInstances(v.app).map((i) => i.agentId));
    const quiesces = this.commands(v, v.cloneInstances.filter((id) => present.has(id)), 'Quiesce');
    const removing = this.store.validations.beginRemoval(v.id, outcome, quiesces, { atUnixMs: this.now(), actor, comment });
    this.log.info({ validation: v.id, app: v.app, outcome, instances: quiesces.map((s) => s.agentId) }, 'validation clone removal');
    this.o.kick(v.app);
    // The clone is held out of rotation from this commit on; its gates quiesce once every router applied that (or the
    // gate's deadline passed). A controller restarted meanwhile sends them from the outbox without waiting.
    if (quiesces.length && this.o.router) this.o.router.sync(v.app, () => !this.stopped && this.o.sink.deliver(quiesces));
    else if (quiesces.length) this.o.sink.deliver(quiesces);
    return this.finishRemoval(v.id) ?? removing;
  }

  /** The clone's removal commands of one kind, for the given instances. */
  private commands(v: ValidationRecord, agents: string[], kind: CloneCommand['kind']): CloneCommand[] {
    const app = this.store.getApp(v.app);
    const at = this.now();
    return agents.map((agentId) => {
      const commandId = this.newId();
      const command = {
        commandId,
        app: v.app,
        deadlineUnixMs: at + app.stopTimeoutMs + REMOVAL_DRAIN_MS + STOP_GRACE_MS,
        timeoutMs: 0,
        releaseId: v.id,
        ...(kind === 'Quiesce' ? { quiesce: { drainMs: REMOVAL_DRAIN_MS } } : { stopApp: {} }),
      } as Command;
      return { commandId, agentId, kind, payload: encodeCommand(command) };
    });
  }

  /** After an answer: sends the StopApp commands once the quiesces answered, ends the removal once those did. */
  private finishRemoval(id: string): ValidationRecord | null {
    try {
      const v = this.store.validations.get(id);
      if (this.store.validations.removalPhase(id) === 'stops-due' && this.o.router && !this.drainedAtRouters.has(id)) {
        // Every clone instance quiesced: its app stops once every router fronting the app drained it (or after the gate's deadline).
        this.drainedAtRouters.add(id);
        this.o.router.sync(v.app, () => this.schedule(id));
        return null;
      }
      const { send, finished } = this.store.validations.advanceRemoval(id, this.now(), (agents) => this.commands(v, agents, 'StopApp'));
      if (send.length) this.o.sink.deliver(send);
      if (finished) {
        this.drainedAtRouters.delete(id);
        this.log.info({ validation: id, status: finished.status }, 'validation finished');
      }
      return finished;
    } catch (err) {
      this.log.error({ err, validation: id }, 'validation removal step failed');
      return null;
    }
  }

  // ── checks and specs ────────────────────────────────────────────────────────

  private checkValidate(req: ValidateEditionRequest, app: string, actor: string): ValidationRecord {
    this.store.getApp(app);
    const edition = req.edition.trim();
    if (!edition) throw new BadInputError('validate: the edition is required');
    if (!this.store.listEditions(app).some((e) => e.name === edition)) throw new NotFoundError(`edition '${edition}' of app '${app}' does not exist`);
    const targetGroup = req.targetGroup.trim();
    if (!targetGroup) throw new BadInputError('validate: --target GROUP (the group the edition is validated for) is required');
    const cloneGroup = req.cloneGroup.trim();
    const named = req.cloneInstances.map((i) => i.trim()).filter(Boolean);
    if ((cloneGroup ? 1 : 0) + (named.length ? 1 : 0) !== 1) throw new BadInputError('validate: give the clone as --group GROUP or --on INSTANCE…, one of them');
    if (!req.route) throw new BadInputError('validate: --route KIND:MATCH (the users who reach the clone) is required');
    const fields = validateRoute({ kind: req.route.kind, name: req.route.name, value: req.route.value, percent: req.route.percent, priority: 0 });
    for (const key of Object.keys(req.env)) if (!ENV_NAME.test(key)) throw new BadInputError(`validate: --env name '${key}' is not a variable name`);
    const current = this.store.validations.inProgress(app);
    if (current) throw new ConflictError(`app '${app}' already has validation ${current.id} of edition ${current.edition} (${current.status}); roll it out or cancel it first`);
    const instances = this.store.listInstances(app);
    const clone = cloneInstances(instances, targetGroup, { group: cloneGroup, instances: named });
    const routes = this.store.routing.listRoutes(app);
    const clash = routes.find((r) => sameMatch(r, fields));
    if (clash) throw new ConflictError(`route ${clash.id} of ${app} already matches ${describeMatch(clash)} (to edition ${clash.edition}); pick another match for the validation`);
    const total = percentTotal([...routes, fields]);
    if (total > 100) throw new ConflictError(`percent rules of ${app} would add up to ${total}%; together they may take at most 100%`);
    return {
      id: `${VALIDATION_ID_PREFIX}${this.newId().slice(0, 8)}`,
      app,
      edition,
      targetGroup,
      cloneGroup,
      cloneInstances: clone,
      env: { ...req.env },
      route: { kind: fields.kind, name: fields.name, value: fields.value, percent: fields.percent },
      routeId: '',
      status: 'activating',
      outcome: '',
      releaseId: '',
      rolloutReleaseId: '',
      message: '',
      createdBy: actor,
      createdUnixMs: this.now(),
      finishedUnixMs: 0,
    };
  }

  /** The clone's release: the edition to the clone's instances, with the env overrides; started by the caller. */
  private cloneSpec(v: ValidationRecord): CompiledSpec {
    const groups = new Set(this.store.listInstances(v.app).filter((i) => v.cloneInstances.includes(i.agentId)).map((i) => i.group));
    const group = v.cloneGroup || (groups.size === 1 ? [...groups][0]! : 'all');
    // One batch: a clone is a few instances beside the target, and none of them serves default traffic.
    const spec = compileReleaseSpec({ app: v.app, edition: v.edition, group, batches: 1, start: false });
    return { ...spec, env: v.env, ...(v.cloneGroup ? {} : { instances: v.cloneInstances }) };
  }

  /** `release create --from-validation`: the validation's edition to its target, with the release's usual policy. */
  private rollOut(raw: Partial<ReleaseSpec>, app: string, actor: string): ReleaseRecord {
    this.store.getApp(app);
    const v = this.store.validations.inProgress(app);
    if (!v) throw new ConflictError(`app '${app}' has no validation in progress; start one with fleetwave edition validate`);
    const edition = (raw.edition ?? '').trim();
    if (edition && edition !== v.edition) throw new BadInputError(`release: validation ${v.id} validates edition ${v.edition}, not ${edition}`);
    const group = (raw.group ?? '').trim();
    if (group && group !== v.targetGroup) throw new BadInputError(`release: validation ${v.id} rolls out to its target '${v.targetGroup}', not '${group}'`);
    if (v.status !== 'validating') throw new ConflictError(`validation ${v.id} is ${v.status}; a rollout starts from a clone that is validating`);
    const spec = compileReleaseSpec({ ...raw, edition: v.edition, group: v.targetGroup, fromValidation: false });
    const release = this.store.transaction(() => {
      const release = this.engine.createCompiledRelease({ ...spec, start: false }, actor);
      this.store.validations.setRelease(v.id, 'rollout', release.id);
      this.store.validations.move(v.id, 'rolling-out', `release ${release.id} rolls ${v.edition} out to ${v.targetGroup}`, { atUnixMs: this.now(), actor, comment: '' }, 'release-from-validation');
      return release;
    });
    if (spec.start) this.engine.act(release.id, 'start', actor, `from validation ${v.id}`);
    return this.store.getRelease(release.id);
  }

  /** `--operation clone --to G`: the app's default edition (its spec is the app's) released to G. */
  private cloneOperation(raw: Partial<ReleaseSpec>, app: string, actor: string): ReleaseRecord {
    this.store.getApp(app);
    const group = (raw.group ?? '').trim();
    if (!group || group === 'all') throw new BadInputError('release: --operation clone needs --to GROUP (one group)');
    const defaults = this.store.routing.editionActivity(app).defaults;
    if (defaults.length !== 1) {
      throw new ConflictError(defaults.length ? `app '${app}' has ${defaults.length} default editions now (${defaults.join(', ')}): a release moves it; clone once it ended` : `app '${app}' runs no edition to clone`);
    }
    const edition = defaults[0]!;
    const asked = (raw.edition ?? '').trim();
    if (asked && asked !== edition) throw new BadInputError(`release: a clone copies the default edition ${edition}; leave --edition out`);
    const spec = compileReleaseSpec({ ...raw, edition, group, operation: '' });
    const release = this.store.transaction(() => {
      const release = this.engine.createCompiledRelease({ ...spec, start: false }, actor);
      this.store.recordChange({ atUnixMs: this.now(), actor, action: 'clone', app, releaseId: release.id, comment: '', result: `clone: the default edition ${edition} of ${app} (and its spec) onto group ${group}` });
      return release;
    });
    if (spec.start) this.engine.act(release.id, 'start', actor, `clone onto ${group}`);
    return this.store.getRelease(release.id);
  }

  /** Runs `fn`; a refusal becomes the app's change record "refused: <reason>" (when the app exists), then is rethrown. */
  private recordingRefusal<T>(app: string, actor: string, action: string, comment: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (this.store.hasApp(app)) {
        const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
        this.store.recordChange({ atUnixMs: this.now(), actor, action, app, releaseId: '', comment, result: `refused: ${reason}` });
      }
      throw err;
    }
  }
}
