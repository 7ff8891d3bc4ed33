// Assembles and runs the controller: store, engine, agent and admin gRPC services, HTTP endpoint and NATS link.
import * as grpc from '@grpc/grpc-js';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ConflictError, UnavailableError } from '../common/errors.js';
import { CONTROLLER_SOURCE, releaseEvent } from '../common/events.js';
import { createLogger, type Logger } from '../common/logger.js';
import { AdminServiceService } from '../proto/gen/fleetwave/v1/admin.js';
import { AgentServiceService } from '../proto/gen/fleetwave/v1/agent.js';
import { SecurityServiceService } from '../proto/gen/fleetwave/v1/security.js';
import { serverCredentials } from '../common/tls.js';
import { Authenticator, guardService } from './auth.js';
import { bootstrapAdminToken } from './tokens-bootstrap.js';
import { createSecurityService } from './tokens-service.js';
import { TokenStore } from './tokens.js';
import { NatsUsersFile } from './nats-users.js';
import { createAdminService } from './admin-service.js';
import { Notifications } from './notify.js';
import { createNotifyHandlers } from './notify-service.js';
import { AgentSessions } from './agent-service.js';
import { AgentUpgrades } from './agent-upgrade.js';
import { artifactsDir } from './artifacts.js';
import { ReleaseEngine } from './engine/engine.js';
import { RoutingHub } from './routing-hub.js';
import { ValidationManager } from './validation.js';
import { EngineInbox } from './engine/inbox.js';
import { EventHub } from './event-hub.js';
import { createHttpServer } from './http.js';
import { ControllerMetrics } from './metrics.js';
import { validateIngestAsync } from './event-validation.js';
import { NATS_OPEN_MESSAGE, NatsBridge, natsRequiresAuth } from './nats.js';
import { publishReachability } from './reachability.js';
import { compileControllerOptions, type ControllerOptions, type RawControllerOptions } from './options.js';
import { Store } from './store/store.js';

/** `edition install --url` fetches the package once to check it; a stuck server does not hold the CLI forever. */
const PACKAGE_FETCH_TIMEOUT_MS = 10 * 60_000;

export interface RunningController {
  grpcPort: number;
  httpPort: number;
  /** Graceful stop: streams end, servers close, NATS drains, the database closes. */
  stop(): Promise<void>;
}

/** Admin uploads carry whole packages. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const EVENT_SOURCE = CONTROLLER_SOURCE;

const GRPC_SERVER_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  // Agent streams sit idle between heartbeats; keepalive notices dead peers behind NAT.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
};

/** The server options with the operator's message size limit (a bigger message fails only its own call or stream). */
export function grpcServerOptions(maxMessageBytes: number): grpc.ChannelOptions {
  return { ...GRPC_SERVER_OPTIONS, 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes };
}

export async function runController(input: RawControllerOptions | ControllerOptions, logger?: Logger): Promise<RunningController> {
  const options = compileControllerOptions(input);
  const log = logger ?? createLogger({ name: 'controller', format: options.logFormat, level: options.logLevel });
  // The users file first: nats-server includes it, so at the very first start it cannot start until the file exists.
  const natsUsers = options.natsAgentUsers ? new NatsUsersFile(options.natsAgentUsers, log) : undefined;
  natsUsers?.ensureExists();
  // A NATS anyone may publish on makes every agent event forgeable: refused before anything starts (an unreachable
  // one is checked by the bridge once it connects).
  const requireNatsAuth = !options.insecure && !options.natsInsecure;
  if (requireNatsAuth && (await natsRequiresAuth(options.natsUrl, options.natsAuth)) === false) throw new ConflictError(NATS_OPEN_MESSAGE);
  mkdirSync(artifactsDir(options.dataDir), { recursive: true, mode: 0o700 });
  // Owner-only: the database and the uploaded packages are the controller's alone (mkdir's mode does not change an existing dir).
  chmodSync(options.dataDir, 0o700);
  const store = Store.open(join(options.dataDir, 'fleetwave.db'));
  // No stream survives a restart: every agent is unreachable until it says hello again.
  store.markAllAgentsUnreachable();
  const tokens = new TokenStore(store.db);
  // Without --insecure every call is authenticated; the first admin token comes from --bootstrap-token-file.
  const auth = options.insecure ? null : new Authenticator(tokens, log);
  if (auth && options.bootstrapTokenFile) bootstrapAdminToken(tokens, options.bootstrapTokenFile, log);
  // The file follows the database (a rewrite lost to a crash, a changed template).
  natsUsers?.sync(tokens.natsAgentUsers());

  /** Known once the HTTP listener is bound. */
  let advertiseHttp = '';
  const hub = new EventHub();
  // The gauge reads the sessions lazily, at scrape time.
  const metrics: ControllerMetrics = new ControllerMetrics(store, () => sessions.connectedCount);
  const sessions = new AgentSessions({
    store,
    logger: log,
    metrics,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs,
    controllerId: `${hostname()}:${process.pid}`,
    authenticate: auth ? (call) => auth.agentOf(call.metadata, call.getPeer()) : undefined,
    artifactBaseUrl: () => advertiseHttp,
    onReachability: (change) => publishReachability(EVENT_SOURCE, change, (subject, event) => nats.publish(subject, event)),
  });
  let inbox: EngineInbox | undefined;
  const nats = new NatsBridge({
    url: options.natsUrl,
    auth: options.natsAuth,
    logger: log,
    hub,
    onDrained: (app, instance, quiesceCommandId, elapsedMs) => inbox?.drained(app, instance, quiesceCommandId, elapsedMs),
    validate: (message) => validateIngestAsync(message, { requireSignature: !options.insecure, agentKey: (id) => store.agentEventKey(id) }),
    onRejected: (reason) => metrics.eventsRejected.inc({ reason }),
    requireAuth: requireNatsAuth,
    onEvent: (source) => metrics.eventsPublished.inc({ source }),
  });
  // The routers' side, and the engine's RouterGate: fed by rule changes (admin service), release changes (engine)
  // and instance removals (store); instance changes it polls for itself while a router watches.
  const routing = new RoutingHub({
    source: store.routing,
    appOfRelease: (id) => store.getRelease(id).app,
    hasApp: (app) => store.hasApp(app),
    logger: log,
    metrics,
  });
  metrics.observeRouting(() => routing.stats());
  metrics.observeEvents(hub, store);
  // Webhooks: matched on the same hub as the SSE stream, so they see exactly what /events shows.
  const notifications = new Notifications({ store: store.notifications, hub, logger: log, tuning: options.notify, observer: metrics });
  store.onInstanceRemoved((app, instance) => routing.instanceRemoved(app, instance));
  const engine = new ReleaseEngine({
    store,
    sink: sessions,
    logger: log,
    observer: metrics,
    router: routing,
    publish: (app, releaseId, reason, data) => {
      const { subject, event } = releaseEvent(EVENT_SOURCE, app, releaseId, reason, data);
      nats.publish(subject, event);
    },
  });
  engine.onReleaseChanged((id) => routing.releaseChanged(id));
  // Validation clones follow their releases (rule once the clone is Released, removal once the rollout is).
  const validations = new ValidationManager({ store, engine, sink: sessions, kick: (app) => routing.kick(app), router: routing, logger: log });
  // Results and drained events of one event-loop turn reach the engine together (one pass per release, not per input).
  inbox = new EngineInbox(engine);
  sessions.attach(inbox);
  engine.attachInbox(inbox);
  const agentUpgrades = new AgentUpgrades({ store, sink: sessions, logger: log });
  sessions.attachUpgrades(agentUpgrades);

  const packageChecks = { limits: options.archiveLimits, maxPackageBytes: options.maxPackageBytes, fetchTimeoutMs: PACKAGE_FETCH_TIMEOUT_MS };
  const notify = createNotifyHandlers(notifications, log);
  const admin = createAdminService({ store, engine, sessions, agentUpgrades, routing, validations, logger: log, dataDir: options.dataDir, advertiseHttp: () => advertiseHttp, packageChecks, notify });
  // The HTTP API calls the unguarded handlers in-process and checks roles itself (the same table as gRPC).
  const httpServer = createHttpServer({ dataDir: options.dataDir, hub, metrics, logger: log, tls: options.tls, auth, admin, consoleDir: options.consoleDir ?? undefined });
  let grpcServer: grpc.Server | undefined;
  try {
    const httpPort = await listenHttp(httpServer, options.http.host, options.http.port);
    // The HTTP side speaks TLS exactly when gRPC does, so the default URL follows.
    advertiseHttp = options.advertiseHttp ?? `${options.tls ? 'https' : 'http'}://${advertisedHost(options.http.host)}:${httpPort}`;
    grpcServer = new grpc.Server(grpcServerOptions(options.maxMessageBytes));
    grpcServer.addService(AgentServiceService, sessions.handlers());
    grpcServer.addService(AdminServiceService, auth ? guardService(admin, auth) : admin);
    // A revoked agent's event key goes with its credential: its events are refused from that moment.
    const revoked = (id: string, reason: string) => (store.clearAgentEventKey(id), sessions.disconnect(id, reason));
    const security = createSecurityService({
      tokens,
      logger: log,
      disconnectAgent: revoked,
      recordChange: (c) => store.recordChange({ ...c, atUnixMs: Date.now(), app: '', releaseId: '' }),
      natsUsers,
    });
    grpcServer.addService(SecurityServiceService, auth ? guardService(security, auth) : security);
    const credentials = options.tls ? serverCredentials(options.tls) : grpc.ServerCredentials.createInsecure();
    const grpcPort = await bindGrpc(grpcServer, options.listen.host, options.listen.port, credentials);
    validations.start();
    engine.start();
    agentUpgrades.start();
    sessions.startSweep();
    notifications.start();
    nats.start();
    if (options.readyFile) writeReadyFile(options.readyFile, { grpc: grpcPort, http: httpPort, pid: process.pid });
    log.info({ tls: options.tls !== null, auth: auth !== null, grpc: `${options.listen.host}:${grpcPort}`, http: `${options.http.host}:${httpPort}`, advertiseHttp, dataDir: options.dataDir }, 'controller listening');

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        log.info('controller stopping');
        inbox?.close();
        validations.stop();
        engine.stop();
        agentUpgrades.stop();
        sessions.stop();
        routing.stop();
        await shutdownGrpc(grpcServer!);
        await closeHttp(httpServer);
        await nats.stop();
        await notifications.stop();
        store.close();
        if (options.readyFile) rmSync(options.readyFile, { force: true });
        log.info('controller stopped');
      })());
    return { grpcPort, httpPort, stop };
  } catch (err) {
    grpcServer?.forceShutdown();
    httpServer.close();
    await nats.stop();
    await notifications.stop();
    store.close();
    throw err;
  }
}

function advertisedHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return hostname();
  return host.includes(':') ? `[${host}]` : host;
}

function listenHttp(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', (err) => reject(new UnavailableError(`--http ${host}:${port}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolvePort((server.address() as AddressInfo).port));
  });
}

function bindGrpc(server: grpc.Server, host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolvePort, reject) => {
    server.bindAsync(address, credentials, (err, bound) => {
      if (err) reject(new UnavailableError(`--listen ${address}: ${err.message}`, { cause: err }));
      else resolvePort(bound);
    });
  });
}

function shutdownGrpc(server: grpc.Server): Promise<void> {
  return new Promise((done) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      done();
    }, 5_000);
    server.tryShutdown(() => {
      clearTimeout(force);
      done();
    });
  });
}

function closeHttp(server: HttpServer): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    // SSE streams never end on their own.
    server.closeAllConnections();
  });
}

/** Written atomically (temp + rename) so a reader never sees half of it. */
function writeReadyFile(path: string, content: { grpc: number; http: number; pid: number }): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(content) + '\n');
  renameSync(temp, path);
}
