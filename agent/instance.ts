// One application instance on this host: its traffic gate, its supervised process and its durable record.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AppSpec, InstanceReport } from '../proto/gen/fleetwave/v1/agent.js';
import { grantAppDir } from './app-access.js';
import type { EventSink } from './events.js';
import { TrafficGate } from './gate.js';
import { CRASH_RESTART_RETRIES, probeUntilHealthy, publishHealth, type HealthProbeSettings } from './health-probe.js';
import type { AgentOptions, InstanceOption } from './options.js';
import { editionDir, listEditions, readMarker, removeLeftovers } from './package/editions.js';
import { canBind, reserveInternalPort, reservePort, type PortReservation } from './ports.js';
import type { AgentState } from './state.js';
import { isSelfDrained } from './self-drain.js';
import { AppStartError } from './start-failure.js';
import { AppSupervisor, reapOrphan } from './supervisor.js';

const DEFAULT_HEALTH_PATH = '/healthz';
/** Starts tried on a fresh internal port after the app found its port taken (EADDRINUSE) before one gives up. */
const PORT_ATTEMPTS = 5;

export class Instance {
  /** How the last HealthCheck command probed this app; the probe after a crash restart does the same. */
  healthSettings: HealthProbeSettings | undefined;

  private constructor(
    readonly app: string,
    readonly appDir: string,
    /** The internal port, reserved host-wide (ports.ts); moved when the app finds it taken at start. */
    private port: PortReservation,
    readonly gate: TrafficGate,
    readonly supervisor: AppSupervisor,
    private readonly state: AgentState,
    private readonly events: EventSink,
    private readonly logger: Logger,
    /** Every service port this agent serves on: never an internal port. */
    private readonly servicePorts: number[],
    /** The gate's service port, reserved so no agent on the host takes it as an internal port. */
    private readonly serviceHold: PortReservation | null,
  ) {}

  get internalPort(): number {
    return this.port.port;
  }

  /** Reaps a process a previous agent run left, picks the internal port and opens the gate. */
  static async open(option: InstanceOption, options: AgentOptions, state: AgentState, events: EventSink, logger: Logger): Promise<Instance> {
    const app = option.app;
    const appDir = state.appDir(app);
    const record = state.app(app);
    if (record.pid) reapOrphan(record.pid, record.pidStartTime, logger);
    await removeLeftovers(appDir);
    if (options.runAs) {
      // Editions unpacked before --app-user was set (or by an older agent) become readable by the app user too.
      await mkdir(appDir, { recursive: true, mode: 0o750 });
      await grantAppDir(options.dataDir, appDir, options.runAs);
    }
    const servicePorts = options.instances.map((i) => i.servicePort).filter((p) => p > 0);
    const port = await reserveInternalPort({ avoid: servicePorts });
    const internalPort = port.port;
    let instance: Instance | undefined;
    const supervisor = new AppSupervisor({
      app,
      instanceId: options.id,
      internalPort,
      portFor: (spec) => (isSelfDrained(spec) ? gate.port : (instance?.internalPort ?? internalPort)),
      logPath: join(appDir, 'app.log'),
      startGraceMs: options.startGraceMs,
      runAs: options.runAs ?? undefined,
      events,
      logger,
      afterCrashRestart: (edition, failure, signal) => void instance?.afterCrashRestart(edition, failure, signal),
      onPid: (pid, pidStartTime) => void state.updateApp(app, { pid, pidStartTime }).catch((err: Error) => logger.error({ app, err: err.message }, 'could not record app pid')),
    });
    const gate = new TrafficGate({
      app,
      host: option.host ?? options.gateHost,
      port: option.servicePort,
      targetPort: internalPort,
      healthPath: record.spec?.healthPath || DEFAULT_HEALTH_PATH,
      queueLimit: options.gateQueue,
      holdMs: options.gateHoldMs,
      isAppExpected: () => supervisor.expected,
      logger,
    });
    if (record.quiesced && !isSelfDrained(record.spec)) {
      // Quiesced before this agent restarted and not healthy since: the controller still counts it drained.
      logger.info({ app }, 'gate opens quiesced: the instance was quiesced before the agent restarted');
      gate.quiesce();
    }
    try {
      // An app that drains itself listens on the service port; the gate binds it only to learn a port 0 choice.
      await gate.listen();
      if (isSelfDrained(record.spec)) await gate.unlisten();
    } catch (err) {
      port.release();
      throw new Error(`cannot open the gate of app ${app} on ${option.host ?? options.gateHost}:${option.servicePort}: ${(err as Error).message}`, { cause: err });
    }
    logger.info({ app, servicePort: gate.port, internalPort }, 'instance gate listening');
    const serviceHold = reservePort(gate.port);
    if (!serviceHold) logger.warn({ app, servicePort: gate.port }, 'another agent on this host reserved this service port as an app\'s internal port');
    instance = new Instance(app, appDir, port, gate, supervisor, state, events, logger, servicePorts, serviceHold);
    return instance;
  }

  /** Says what became of an automatic restart: `healthy` once the app answers its health path, else `unhealthy` with why. */
  private async afterCrashRestart(edition: string, failure: string | undefined, signal: AbortSignal): Promise<void> {
    const report = { events: this.events, app: this.app, edition, trigger: 'crash-restart' as const };
    if (failure) return publishHealth({ healthy: false, tries: 0, elapsedMs: 0, error: failure }, report);
    const last = this.healthSettings;
    const settings: HealthProbeSettings = {
      path: last?.path || this.spec?.healthPath || DEFAULT_HEALTH_PATH,
      expectedStatus: last?.expectedStatus || 200,
      // A command's "until the deadline" (0) has no deadline here.
      retries: last?.retries || CRASH_RESTART_RETRIES,
      intervalMs: last?.intervalMs || 0,
      timeoutMs: last?.timeoutMs || 0,
      initialIntervalMs: this.spec?.healthInitialIntervalMs || 0,
    };
    const outcome = await probeUntilHealthy(this, settings, signal);
    // A command took the app over meanwhile: its own HealthCheck reports.
    if (!signal.aborted) publishHealth(outcome, report);
  }

  get activeEdition(): string {
    return this.state.app(this.app).activeEdition;
  }

  /** Where the app itself listens: the internal port behind the gate, or the service port when it drains itself. */
  get appPort(): number {
    return isSelfDrained(this.spec) ? this.gate.port : this.internalPort;
  }

  /** The last AppSpec the controller sent for this app. */
  get spec(): AppSpec | undefined {
    return this.state.app(this.app).spec;
  }

  /** Starts `edition` (stopping what runs first) and records it as active; the previous active edition is remembered. */
  async activate(edition: string, spec: AppSpec | undefined): Promise<string> {
    const record = this.state.app(this.app);
    const appSpec = spec ?? record.spec;
    if (!appSpec) throw new NotFoundError(`app ${this.app}: no AppSpec known yet; the command must carry one`);
    if (!edition) throw new NotFoundError(`app ${this.app}: no edition given and none active`);
    if (!(await readMarker(this.appDir, edition))) {
      throw new NotFoundError(`app ${this.app}: edition ${edition} is not on this host (download it first)`);
    }
    this.gate.setHealthPath(appSpec.healthPath);
    // The gate gives the service port to an app that drains itself before it starts, and takes it back once an old one stopped.
    if (isSelfDrained(appSpec)) await this.gate.unlisten();
    await this.startOnFreePort(edition, appSpec, editionDir(this.appDir, edition));
    if (!isSelfDrained(appSpec) && !this.gate.listening) await this.gate.listen();
    const previous = record.activeEdition && record.activeEdition !== edition ? record.activeEdition : record.previousEdition;
    await this.state.updateApp(this.app, { activeEdition: edition, previousEdition: previous, desired: 'running', spec: appSpec });
    return edition;
  }

  /**
   * Starts the app (stopping what runs first) and answers once it is healthy or past its start grace. Its internal port
   * is checked free just before the spawn; an app that still finds it taken (EADDRINUSE) starts again on another.
   */
  private async startOnFreePort(edition: string, spec: AppSpec, dir: string): Promise<void> {
    const behindGate = !isSelfDrained(spec);
    await this.supervisor.stop(spec.stopTimeoutMs);
    for (let attempt = 1; ; attempt++) {
      if (behindGate && !(await canBind(this.internalPort))) await this.movePort(`port ${this.internalPort} was taken before the start`);
      try {
        await this.supervisor.start(edition, spec, dir, (signal) => this.startedHealthy(spec, signal));
        return;
      } catch (err) {
        if (!(err instanceof AppStartError) || !err.portTaken || !behindGate || attempt >= PORT_ATTEMPTS) throw err;
        await this.movePort(err.logLine);
      }
    }
  }

  /** Moves the app to a fresh internal port: the gate forwards there from now on. */
  private async movePort(why: string): Promise<void> {
    const next = await reserveInternalPort({ avoid: this.servicePorts });
    this.logger.warn({ app: this.app, from: this.internalPort, to: next.port, why }, 'internal port taken; the app starts on another');
    this.port.release();
    this.port = next;
    this.gate.retarget(next.port);
  }

  /** Whether a just-started app answers its health check, probed as the last HealthCheck did; false once `signal` aborts. */
  private async startedHealthy(spec: AppSpec, signal: AbortSignal): Promise<boolean> {
    const last = this.healthSettings;
    const settings: HealthProbeSettings = {
      path: last?.path || spec.healthPath || DEFAULT_HEALTH_PATH,
      expectedStatus: last?.expectedStatus || 200,
      retries: 0,
      intervalMs: last?.intervalMs || 0,
      timeoutMs: last?.timeoutMs || 0,
      initialIntervalMs: spec.healthInitialIntervalMs || 0,
    };
    return (await probeUntilHealthy(this, settings, signal)).healthy;
  }

  /** Stops the process; `remember` records that it should stay stopped across agent restarts. */
  async stop(remember: boolean): Promise<void> {
    await this.supervisor.stop(this.spec?.stopTimeoutMs);
    if (remember) await this.state.updateApp(this.app, { desired: 'stopped' });
  }

  /** Brings the app back after an agent restart when its record says it should run. */
  async restore(logger: Logger): Promise<void> {
    const record = this.state.app(this.app);
    if (record.desired !== 'running' || !record.activeEdition) return;
    try {
      await this.activate(record.activeEdition, record.spec);
    } catch (err) {
      logger.error({ app: this.app, edition: record.activeEdition, err: (err as Error).message }, 'could not restore app at agent start');
    }
  }

  async report(): Promise<InstanceReport> {
    const editions = await listEditions(this.appDir);
    return {
      app: this.app,
      servicePort: this.gate.port,
      activeEdition: this.activeEdition,
      keptEditions: editions.map((e) => e.edition),
      processState: this.supervisor.state,
      quiesced: this.gate.quiesced,
    };
  }

  async close(): Promise<void> {
    await this.supervisor.shutdown(this.spec?.stopTimeoutMs);
    await this.gate.close();
    this.port.release();
    this.serviceHold?.release();
  }
}
