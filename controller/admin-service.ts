// The admin gRPC service used by the CLI; fleetwave errors become gRPC status codes here and nowhere else.
import * as grpc from '@grpc/grpc-js';
import { BadInputError, ConflictError, FleetwaveError, NotFoundError, PackageError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { isSafeName } from '../common/names.js';
import { randomUUID } from 'node:crypto';
import type { AddRouteRequest, AdminServiceServer, InstallEditionRequest, ListQuery, ReleaseDetail, ReleaseSpec, RemoveRouteRequest, Route, UpdateAppResponse, Validation } from '../proto/gen/fleetwave/v1/admin.js';
import { agentToProto, appToProto, detailPageToProto, detailToProto, editionToProto, changeToProto, instanceToProto, releaseToProto, summaryToProto } from './admin-mapping.js';
import type { AgentSessions } from './agent-service.js';
import { validateRoute, type RouteRecord } from './domain/routing.js';
import type { RoutingHub } from './routing-hub.js';
import type { ValidationManager } from './validation.js';
import type { ValidationRecord } from './store/validations.js';
import { routeToProto } from './routing-table.js';
import { SHA256_PATTERN, sha256Of } from './artifacts.js';
import { checkUrlPackage, storeCheckedUpload, type PackageChecks } from './package-check.js';
import type { ReleaseEngine } from './engine/engine.js';
import type { AgentUpgrades } from './agent-upgrade.js';
import { AGENT_APP } from './domain/agent-upgrade.js';
import type { AgentUpgradeRecord, UpgradeTargetRecord } from './store/agent-upgrades.js';
import type { AgentUpgrade } from '../proto/gen/fleetwave/v1/admin.js';
import { isFinalRelease } from './domain/transitions.js';
import { DEFAULT_UPDATE_ORDER, parseUpdateOrder } from './domain/update-order.js';
import type { PageQuery } from './store/lists.js';
import type { NotifyHandlers } from './notify-service.js';
import { AlreadyExistsError, type Store } from './store/store.js';
import type { AppRecord, EditionRecord, ReleaseDetailRecord } from './domain/records.js';

export interface AdminServiceOptions {
  store: Store;
  engine: ReleaseEngine;
  sessions: AgentSessions;
  /** Agent self-upgrades; absent: StartAgentUpgrade is refused (tests of other parts). */
  agentUpgrades?: AgentUpgrades;
  logger: Logger;
  dataDir: string;
  /** Base URL agents download uploaded artifacts from (known once the HTTP server listens). */
  advertiseHttp: () => string;
  /** How `edition install` checks a package before it is listed. */
  packageChecks: PackageChecks;
  /** WatchRouting and AckRouting, and told of every rule change. */
  routing: RoutingHub;
  /** Validation mode and the clone operation. */
  validations: ValidationManager;
  /** The notify RPCs (controller/notify-service.ts). */
  notify: NotifyHandlers;
  now?: () => number;
}

const APP_NAME = /^[a-z0-9][a-z0-9-]*$/;
/** Edition names become directory names on the agents. */
const EDITION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** The operator's name from the `x-fleetwave-actor` metadata, "cli" otherwise. */
export function actorOf(metadata: grpc.Metadata): string {
  const value = metadata.get('x-fleetwave-actor')[0];
  const text = typeof value === 'string' ? value.trim() : '';
  return text || 'cli';
}

/**
 * Maps an error to a gRPC status with a one-line message. The CLI's exit code follows the status
 * (cli/client.ts mapCallError): INVALID_ARGUMENT and NOT_FOUND → 2 (bad input, unknown name);
 * FAILED_PRECONDITION and ALREADY_EXISTS → 1 (refused by the state); UNAVAILABLE → 3.
 */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  let code = grpc.status.INTERNAL;
  // A package refused at install is bad input, like a malformed flag.
  if (err instanceof BadInputError || err instanceof PackageError) code = grpc.status.INVALID_ARGUMENT;
  else if (err instanceof NotFoundError) code = grpc.status.NOT_FOUND;
  else if (err instanceof AlreadyExistsError) code = grpc.status.ALREADY_EXISTS;
  else if (err instanceof ConflictError) code = grpc.status.FAILED_PRECONDITION;
  else if (err instanceof FleetwaveError && err.recoverable) code = grpc.status.UNAVAILABLE;
  return { code, details: message };
}

/** A synchronous handler whose errors become one-line gRPC statuses (toServiceError); internal ones are logged. */
export function unary<Req, Res>(log: Logger, name: string, fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    try {
      callback(null, fn(call.request, call));
    } catch (err) {
      const status = toServiceError(err);
      if (status.code === grpc.status.INTERNAL) log.error({ err, rpc: name }, 'admin call failed');
      callback(status as grpc.ServiceError);
    }
  };
}

/** As unary, for a call that waits on I/O (a package checked at install); `signal` aborts when the caller goes away. */
function unaryAsync<Req, Res>(log: Logger, name: string, fn: (request: Req, signal: AbortSignal) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const gone = new AbortController();
    call.on('cancelled', () => gone.abort(new Error('the caller went away (deadline or cancel)')));
    fn(call.request, gone.signal).then(
      (res) => callback(null, res),
      (err: unknown) => {
        const status = toServiceError(err);
        if (status.code === grpc.status.INTERNAL) log.error({ err, rpc: name }, 'admin call failed');
        callback(status as grpc.ServiceError);
      },
    );
  };
}

/** The filters and page of a listing request, trimmed (none: everything, the default page); the store checks them. */
function pageQuery(q: ListQuery | undefined): PageQuery {
  if (!q) return FIRST_PAGE;
  return { group: q.group.trim(), status: q.status.trim(), edition: q.edition.trim(), limit: q.limit, after: q.after.trim() };
}

/** What CreateRelease, ReleaseAction and BackOut answer with: the release and the first page of its instances. */
const FIRST_PAGE: PageQuery = { group: '', status: '', edition: '', limit: 0, after: '' };

export function createAdminService(o: AdminServiceOptions): AdminServiceServer {
  const { store, engine, logger: log } = o;
  const now = o.now ?? (() => Date.now());
  return {
    ...o.notify,
    createApp: unary(log, 'CreateApp', (req) => {
      if (req.app?.name.trim() === AGENT_APP) throw new BadInputError(`app: the name ${AGENT_APP} is reserved for agent packages (fleetwave agent publish FILE --version V)`);
      return appToProto(store.createApp(validateApp(req.app, now())));
    }),
    updateApp: unary(log, 'UpdateApp', (req, call) => {
      if (req.app?.name.trim() === AGENT_APP) throw new BadInputError(`app: the name ${AGENT_APP} is reserved for agent packages`);
      return updateApp(store, validateApp(req.app, now()), actorOf(call.metadata), now());
    }),
    listApps: unary(log, 'ListApps', () => ({ apps: store.listApps().map(appToProto) })),
    installEdition: unaryAsync(log, 'InstallEdition', async (req, signal) => {
      const edition = await toEdition(req, o, now(), signal);
      // A caller that gave up while the package was checked is told nothing: nothing must be listed behind its back.
      signal.throwIfAborted();
      return editionToProto(store.installEdition(edition));
    }),
    listEditions: unary(log, 'ListEditions', (req) => {
      const editions = store.listEditions(req.app);
      const activity = store.routing.editionActivity(req.app);
      const validation = store.validations.inProgress(req.app.trim());
      return {
        editions: editions.map((e) => editionToProto(e, { activeGroups: activity.groups.get(e.name) ?? [], isDefault: activity.defaults.includes(e.name), keptInstances: activity.kept.get(e.name) ?? 0 })),
        validation: validation ? validationToProto(validation) : undefined,
      };
    }),
    createRelease: unary(log, 'CreateRelease', (req, call) => {
      const actor = actorOf(call.metadata);
      if (req.spec?.app.trim() === AGENT_APP) throw new BadInputError(`release: ${AGENT_APP} holds agent packages; roll one out with fleetwave agent upgrade --to VERSION`);
      if (req.dryRun) return detailToProto(planRelease(engine, req.spec ?? {}, actor));
      const release = o.validations.createRelease(req.spec ?? {}, actor) ?? engine.createRelease(req.spec ?? {}, actor);
      return detailPageToProto(store.lists.releaseDetail(release.id, FIRST_PAGE));
    }),
    getRelease: unary(log, 'GetRelease', (req) => detailPageToProto(store.lists.releaseDetail(req.id, pageQuery(req.query)))),
    listReleases: unary(log, 'ListReleases', (req) => ({ releases: store.listReleases(req.app).map(releaseToProto) })),
    watchRelease: (call) => watchRelease(o, call),
    releaseAction: unary(log, 'ReleaseAction', (req, call) => {
      engine.act(req.id, req.action.trim(), actorOf(call.metadata), req.comment, { batches: req.batches });
      return detailPageToProto(store.lists.releaseDetail(req.id, FIRST_PAGE));
    }),
    backOut: unary(log, 'BackOut', (req, call) => {
      const release = engine.backOut(req.app, req.group, actorOf(call.metadata), req.comment);
      return detailPageToProto(store.lists.releaseDetail(release.id, FIRST_PAGE));
    }),
    listAgents: unary(log, 'ListAgents', (req) => {
      const page = store.lists.agents(pageQuery(req.query));
      return {
        agents: page.rows.map((a) => agentToProto(a, o.sessions.lastSeen(a.id), o.sessions.clockSkew(a.id))),
        summary: summaryToProto(page.summary),
        nextAfter: page.nextAfter,
      };
    }),
    listInstances: unary(log, 'ListInstances', (req) => {
      const page = store.lists.instances(req.app, pageQuery(req.query));
      return { instances: page.rows.map(instanceToProto), summary: summaryToProto(page.summary), nextAfter: page.nextAfter };
    }),
    history: unary(log, 'History', (req) => ({ changes: store.history(req.app).map(changeToProto) })),
    addRoute: unary(log, 'AddRoute', (req, call) => routeToProto(addRoute(o, req, actorOf(call.metadata), now()))),
    listRoutes: unary(log, 'ListRoutes', (req) => ({ routes: store.routing.listRoutes(req.app.trim()).map(routeToProto) })),
    removeRoute: unary(log, 'RemoveRoute', (req, call) => routeToProto(removeRoute(o, req, actorOf(call.metadata), now()))),
    watchRouting: (call) => {
      try {
        o.routing.watch(call);
      } catch (err) {
        call.emit('error', toServiceError(err));
      }
    },
    ackRouting: unary(log, 'AckRouting', (req) => {
      o.routing.ack(req);
      return {};
    }),
    validateEdition: unary(log, 'ValidateEdition', (req, call) => validationToProto(o.validations.validate(req, actorOf(call.metadata)))),
    cancelValidation: unary(log, 'CancelValidation', (req, call) => validationToProto(o.validations.cancel(req.app, actorOf(call.metadata), req.comment))),
    startAgentUpgrade: unary(log, 'StartAgentUpgrade', (req, call) => {
      if (!o.agentUpgrades) throw new ConflictError('agent upgrade: this controller runs without the upgrade coordinator');
      const upgrade = o.agentUpgrades.create(req, actorOf(call.metadata));
      return agentUpgradeToProto(upgrade, o.agentUpgrades.get(upgrade.id).targets);
    }),
    getAgentUpgrade: unary(log, 'GetAgentUpgrade', (req) => {
      if (!o.agentUpgrades) throw new NotFoundError('agent upgrade: none was started yet');
      const { upgrade, targets } = o.agentUpgrades.get(req.id.trim());
      return agentUpgradeToProto(upgrade, targets);
    }),
    cancelAgentUpgrade: unary(log, 'CancelAgentUpgrade', (req, call) => {
      if (!o.agentUpgrades) throw new NotFoundError('agent upgrade: none was started yet');
      const upgrade = o.agentUpgrades.cancel(req.id.trim(), actorOf(call.metadata), req.comment.trim());
      return agentUpgradeToProto(upgrade, o.agentUpgrades.get(upgrade.id).targets);
    }),
  };
}

/** A dry run plans an edition release; the validation roll-out and the clone operation create more than a release. */
function planRelease(engine: ReleaseEngine, spec: Partial<ReleaseSpec>, actor: string): ReleaseDetailRecord {
  if (spec.fromValidation || (spec.operation ?? '').trim()) throw new BadInputError('release: --dry-run plans an edition release; --from-validation and --operation are not planned');
  return engine.planRelease(spec, actor);
}

/** `app apply` on an app that exists: unchanged (nothing written) or replaced with a change record naming the keys. */
function updateApp(store: Store, wanted: AppRecord, actor: string, at: number): UpdateAppResponse {
  const current = store.getApp(wanted.name);
  const changed = changedAppFields(current, wanted);
  if (changed.length === 0) return { app: appToProto(current), changed: false };
  const updated = store.updateApp(wanted, { atUnixMs: at, actor, result: `updated: ${changed.join(', ')}` });
  return { app: appToProto(updated), changed: true };
}

/** The definition's fields that differ (the creation time is not part of it). */
export function changedAppFields(a: AppRecord, b: AppRecord): string[] {
  const fields: Array<keyof AppRecord> = ['startCommand', 'env', 'portEnv', 'healthPath', 'stopTimeoutMs', 'drainMode', 'quiesceHook', 'inflightPath', 'updateOrder', 'startGraceMs', 'healthInitialIntervalMs', 'holdMs'];
  const norm = (app: AppRecord, key: keyof AppRecord) => {
    const value = app[key] ?? APP_FIELD_DEFAULTS[key];
    // Env order is not meaning: {A, B} and {B, A} are one env.
    return key === 'env' ? JSON.stringify(Object.entries(value as Record<string, string>).sort()) : JSON.stringify(value);
  };
  return fields.filter((key) => norm(a, key) !== norm(b, key));
}

/** What the store writes for a field an older record leaves out. */
const APP_FIELD_DEFAULTS: Partial<Record<keyof AppRecord, unknown>> = { drainMode: 'gate', quiesceHook: '', inflightPath: '', updateOrder: 'stop-first', startGraceMs: 0, healthInitialIntervalMs: 0, holdMs: 0 };

function validationToProto(v: ValidationRecord): Validation {
  return {
    id: v.id,
    app: v.app,
    edition: v.edition,
    targetGroup: v.targetGroup,
    cloneGroup: v.cloneGroup,
    cloneInstances: v.cloneInstances,
    route: { id: v.routeId, app: v.app, edition: v.edition, ...v.route, priority: 0, createdUnixMs: 0, createdBy: v.createdBy },
    env: v.env,
    status: v.status,
    releaseId: v.releaseId,
    rolloutReleaseId: v.rolloutReleaseId,
    createdBy: v.createdBy,
    createdUnixMs: v.createdUnixMs,
    finishedUnixMs: v.finishedUnixMs,
    message: v.message,
  };
}

/**
 * Runs a rule change; a refused one is recorded in the app's history ("refused: <reason>") like refused release
 * actions, then rethrown. An app that does not exist has no history to write to.
 */
function recordingRefusal<T>(o: AdminServiceOptions, change: { app: string; actor: string; action: string; comment: string; at: number }, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (o.store.hasApp(change.app)) {
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      o.store.recordChange({ atUnixMs: change.at, actor: change.actor, action: change.action, app: change.app, releaseId: '', comment: change.comment, result: `refused: ${reason}` });
    }
    throw err;
  }
}

function addRoute(o: AdminServiceOptions, req: AddRouteRequest, actor: string, at: number): RouteRecord {
  const app = (req.route?.app ?? '').trim();
  return recordingRefusal(o, { app, actor, action: 'route-add', comment: req.comment, at }, () => {
    const raw: Partial<Route> = req.route ?? {};
    o.store.getApp(app);
    const edition = (raw.edition ?? '').trim();
    if (!edition) throw new BadInputError('route: the edition the rule sends requests to is required');
    const fields = validateRoute({ kind: raw.kind ?? '', name: raw.name ?? '', value: raw.value ?? '', percent: raw.percent ?? 0, priority: raw.priority ?? 0 });
    const route: RouteRecord = { id: `rt-${randomUUID().slice(0, 8)}`, app, edition, ...fields, createdUnixMs: at, createdBy: actor };
    // A rule no router applies would look in force while nothing routes by it.
    const fronted = () => {
      if (o.routing.routersFor(app) === 0) throw new ConflictError(`no router fronts app '${app}'; start one (fleetwave router --app ${app}=ADDR:PORT) before adding rules`);
    };
    const added = o.store.routing.addRoute(route, { atUnixMs: at, actor, comment: req.comment }, fronted);
    o.logger.info({ app, route: added.id, kind: added.kind, edition, actor }, 'route added');
    o.routing.kick(app);
    return added;
  });
}

function removeRoute(o: AdminServiceOptions, req: RemoveRouteRequest, actor: string, at: number): RouteRecord {
  const app = req.app.trim();
  return recordingRefusal(o, { app, actor, action: 'route-remove', comment: req.comment, at }, () => {
    const removed = o.store.routing.removeRoute(app, req.id.trim(), { atUnixMs: at, actor, comment: req.comment });
    o.logger.info({ app, route: removed.id, actor }, 'route removed');
    o.routing.kick(app);
    return removed;
  });
}

/** Sends the release now and after every change, until it reaches a final status or the client goes away. */
function watchRelease(o: AdminServiceOptions, call: grpc.ServerWritableStream<{ id: string }, ReleaseDetail>): void {
  let unsubscribe = () => {};
  let scheduled = false;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    call.end();
  };
  const send = () => {
    scheduled = false;
    if (ended) return;
    try {
      const detail = o.store.getReleaseDetail(call.request.id);
      call.write(detailToProto(detail));
      if (isFinalRelease(detail.release.status)) end();
    } catch (err) {
      ended = true;
      unsubscribe();
      call.emit('error', toServiceError(err));
    }
  };
  unsubscribe = o.engine.onReleaseChanged((id) => {
    // Coalesce the changes of one tick into one message.
    if (id !== call.request.id || scheduled || ended) return;
    scheduled = true;
    setImmediate(send);
  });
  call.on('cancelled', () => {
    ended = true;
    unsubscribe();
  });
  send();
}

function validateApp(app: Partial<AppRecord> | undefined, now: number): AppRecord {
  if (!app) throw new BadInputError('app: the app definition is required');
  const name = (app.name ?? '').trim();
  if (!APP_NAME.test(name)) throw new BadInputError(`app: name '${name}' must match [a-z0-9][a-z0-9-]*`);
  const startCommand = (app.startCommand ?? []).filter((part) => part !== '');
  if (startCommand.length === 0) throw new BadInputError('app: start command must not be empty');
  const portEnv = (app.portEnv ?? '').trim() || 'PORT';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(portEnv)) throw new BadInputError(`app: port env '${portEnv}' is not a variable name`);
  const healthPath = (app.healthPath ?? '').trim() || '/healthz';
  if (!healthPath.startsWith('/')) throw new BadInputError(`app: health path '${healthPath}' must start with '/'`);
  const drain = validateDrain(app);
  return {
    ...drain,
    updateOrder: parseUpdateOrder(app.updateOrder, 'app') || DEFAULT_UPDATE_ORDER,
    name,
    startCommand,
    env: app.env ?? {},
    portEnv,
    healthPath,
    stopTimeoutMs: app.stopTimeoutMs || DEFAULT_STOP_TIMEOUT_MS,
    startGraceMs: app.startGraceMs ?? 0,
    healthInitialIntervalMs: app.healthInitialIntervalMs ?? 0,
    holdMs: app.holdMs ?? 0,
    createdUnixMs: now,
  };
}

/** An app that drains itself (drain mode 'self') needs a quiesce hook (a path or a signal) and an in-flight path. */
function validateDrain(app: Partial<AppRecord>): Pick<AppRecord, 'drainMode' | 'quiesceHook' | 'inflightPath'> {
  const drainMode = (app.drainMode ?? '').trim() || 'gate';
  const quiesceHook = (app.quiesceHook ?? '').trim();
  const inflightPath = (app.inflightPath ?? '').trim();
  if (drainMode === 'gate') {
    if (quiesceHook || inflightPath) throw new BadInputError('app: a quiesce hook and an in-flight path need drain mode self');
    return { drainMode, quiesceHook, inflightPath };
  }
  if (drainMode !== 'self') throw new BadInputError(`app: drain mode must be gate or self (got '${drainMode}')`);
  if (!quiesceHook.startsWith('/') && !/^SIG[A-Z0-9]+$/.test(quiesceHook)) {
    throw new BadInputError(`app: drain mode self needs a quiesce hook: a path such as /quiesce or a signal such as SIGUSR2 (got '${quiesceHook}')`);
  }
  if (!inflightPath.startsWith('/')) throw new BadInputError(`app: drain mode self needs an in-flight path such as /inflight (got '${inflightPath}')`);
  return { drainMode, quiesceHook, inflightPath };
}

async function toEdition(req: InstallEditionRequest, o: AdminServiceOptions, now: number, signal: AbortSignal): Promise<EditionRecord> {
  const name = req.name.trim();
  if (!EDITION_NAME.test(name)) throw new BadInputError(`edition: name '${name}' must match [A-Za-z0-9][A-Za-z0-9._-]*`);
  if (req.app === AGENT_APP) ensureAgentApp(o.store, now);
  o.store.getApp(req.app);
  // Before the package is fetched or stored: a refused install leaves nothing behind.
  if (o.store.listEditions(req.app).some((e) => e.name === name)) throw new AlreadyExistsError(`edition '${name}' of app '${req.app}' already exists`);
  const format = req.format.trim() || 'tar.gz';
  if (format !== 'tar.gz' && format !== 'file') throw new BadInputError(`edition: format must be tar.gz or file (got '${format}')`);
  if (format === 'file' && !req.fileName) throw new BadInputError('edition: format file needs a file name');
  if (req.fileName && !isSafeName(req.fileName)) {
    throw new BadInputError(`edition: file name '${req.fileName}' must be a plain file name (letters, digits, '.', '_', '-'; no '/' or '..')`);
  }
  const base = { app: req.app, name, description: req.description, format, fileName: req.fileName, createdUnixMs: now };
  if (req.content && req.content.length > 0) {
    const digest = sha256Of(req.content);
    if (req.sha256 && req.sha256.toLowerCase() !== digest) throw new BadInputError(`edition: content has sha256 ${digest}, not ${req.sha256}`);
    const { sha256, size } = await storeCheckedUpload(o.dataDir, req.content, format, o.packageChecks);
    return { ...base, url: `${o.advertiseHttp().replace(/\/+$/, '')}/artifacts/${sha256}`, sha256, size };
  }
  if (!req.url) throw new BadInputError('edition: give either the package content or its url and sha256');
  if (!/^https?:\/\//.test(req.url)) throw new BadInputError(`edition: url '${req.url}' must be http(s)`);
  const sha256 = req.sha256.trim().toLowerCase();
  if (!SHA256_PATTERN.test(sha256)) throw new BadInputError('edition: a url needs the package sha256 (64 hex digits)');
  const size = await checkUrlPackage(o.dataDir, req.url, sha256, req.size, format, o.packageChecks, signal);
  return { ...base, url: req.url, sha256, size };
}

/**
 * The reserved app whose editions are agent packages, created by the first `agent publish`. Its start command is never
 * run: releases of it are refused, agents get its editions through UpgradeAgent only.
 */
function ensureAgentApp(store: Store, now: number): void {
  if (store.hasApp(AGENT_APP)) return;
  try {
    store.createApp({ name: AGENT_APP, startCommand: ['fleetwave-agent'], env: {}, portEnv: 'PORT', healthPath: '/', stopTimeoutMs: DEFAULT_STOP_TIMEOUT_MS, createdUnixMs: now });
  } catch (err) {
    // Two publishes at once: the other one created it.
    if (!(err instanceof AlreadyExistsError)) throw err;
  }
}

function agentUpgradeToProto(u: AgentUpgradeRecord, targets: UpgradeTargetRecord[]): AgentUpgrade {
  return {
    id: u.id,
    version: u.version,
    status: u.status,
    message: u.message,
    batches: u.batches,
    currentBatch: u.currentBatch,
    createdUnixMs: u.createdUnixMs,
    finishedUnixMs: u.finishedUnixMs,
    createdBy: u.createdBy,
    targets: targets.map((t) => ({ agentId: t.agentId, group: t.group, batch: t.batch, status: t.status, fromVersion: t.fromVersion, error: t.error, updatedUnixMs: t.updatedUnixMs })),
  };
}
