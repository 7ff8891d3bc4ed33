// `fleetwave router`, assembled: haproxy attached (or started), the routing cache fed by the controller's watch and
// NATS instance events, and the reconciler keeping haproxy equal to the cache.
//
//   controller ──WatchRouting──▶ cache ◀──instance events── NATS
//        ▲                         │ kick
//        └──AckRouting── reconciler ──Runtime API──▶ haproxy (admin socket)
import { credentials } from '@grpc/grpc-js';
import { createLogger, type Logger } from '../common/logger.js';
import { channelCredentials } from '../common/tls.js';
import { RoutingCache } from './cache.js';
import { InstanceEventFeed } from './events.js';
import { checkAttachable } from './haproxy-state.js';
import { ensureHaproxy } from './haproxy-process.js';
import { compileRouterOptions, type RawRouterOptions, type RouterOptions } from './options.js';
import { Reconciler } from './reconciler.js';
import { RuntimeApi } from './runtime.js';
import { RoutingWatch } from './watch.js';

export interface RouterHandle {
  /** haproxy's pid, and whether this router started it (it keeps running after stop() either way). */
  haproxy: { pid: number; started: boolean };
  cache: RoutingCache;
  reconciler: Reconciler;
  watch: RoutingWatch;
  events: InstanceEventFeed | undefined;
  /** Stops watching and reconciling; haproxy keeps serving with what it has. */
  stop(): Promise<void>;
}

export async function runRouter(input: RawRouterOptions | RouterOptions, logger?: Logger): Promise<RouterHandle> {
  const options = 'apps' in input ? input : compileRouterOptions(input);
  const log = logger ?? createLogger({ name: 'router', format: options.logFormat, level: options.logLevel });
  const apps = options.apps.map((a) => a.app);
  const api = new RuntimeApi(options.haproxySocket);
  const haproxy = await ensureHaproxy(
    { apps: options.apps, slots: options.editionSlots, runDir: options.runDir, socketPath: options.haproxySocket, haproxyBin: options.haproxyBin, threads: options.haproxyThreads },
    api,
    log,
  );
  await checkAttachable(api, apps, options.editionSlots);

  const cache = new RoutingCache(apps);
  let watch: RoutingWatch | undefined;
  const reconciler = new Reconciler({
    api,
    cache,
    apps,
    slots: options.editionSlots,
    logger: log,
    resyncMs: options.resyncMs,
    onApplied: (version) => version > 0 && watch?.ack(version),
  });
  watch = new RoutingWatch({
    controller: options.controller,
    credentials: controllerCredentials(options),
    token: options.token,
    apps,
    routerId: options.id,
    logger: log,
    onUpdate: (update) => {
      const changed = cache.applyUpdate(update);
      log.debug({ version: update.version, full: update.full, apps: [...changed] }, 'routing update');
      reconciler.kick();
    },
  });
  const events = options.nats
    ? new InstanceEventFeed({
        url: options.nats,
        auth: options.natsAuth,
        apps,
        routerId: options.id,
        logger: log,
        onEvent: (app, instance, reason, data) => {
          if (!cache.applyEvent(app, instance, reason, data)) return;
          log.info({ app, instance, reason }, 'instance event');
          reconciler.kick();
        },
      })
    : undefined;
  reconciler.start();
  watch.start();
  events?.start();
  log.info({ id: options.id, apps: options.apps, controller: options.controller, socket: options.haproxySocket, haproxyPid: haproxy.pid }, 'router running');
  return {
    haproxy,
    cache,
    reconciler,
    watch,
    events,
    stop: async () => {
      watch.stop();
      reconciler.stop();
      await reconciler.idle();
      await events?.stop();
    },
  };
}

function controllerCredentials(options: RouterOptions) {
  return options.insecure ? credentials.createInsecure() : channelCredentials(options.caFile, '--ca');
}
