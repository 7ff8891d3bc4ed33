// One application instance on this host: its traffic gate, its supervised process and its durable record.
// A start-first restart (start-first.ts) runs a second supervisor on a fresh internal port and, once it is healthy,
// makes it the instance's own (adopt()): `supervisor` and `internalPort` are always the process the gate targets.
//
//   open: app process of an earlier agent run still alive ──yes──▶ re-adopted (keeps running, same internal port)
//                                                          └─no──▶ restore(): the edition a dying agent was moving to,
//                                                                   else the active one, behind the gate as journalled
//   gate: opened in the gate host, or taken over from it as it was (quiesced or not, its held requests)
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AppSpec, InstanceReport } from '../proto/gen/fleetwave/v1/agent.js';
import { grantAppDir } from './app-access.js';
import type { EventSink } from './events.js';
import { GateClient } from './gate-client.js';
import type { GateLink } from './gate-link.js';
import { CRASH_RESTART_RETRIES, probeUntilHealthy, publishHealth, type HealthProbeSettings, type ProbeTarget } from './health-probe.js';
import type { AgentOptions, InstanceOption } from './options.js';
import { editionDir, listEditions, readMarker, removeLeftovers } from './package/editions.js';
import { canBind, reserveInternalPort, reservePort, type PortReservation } from './ports.js';
import type { AgentState } from './state.js';
import { isSelfDrained } from './self-drain.js';
import { AppStartError } from './start-failure.js';
import { AppSupervisor, processStartTime, reapOrphan, stopOrphan } from './supervisor.js';

const DEFAULT_HEALTH_PATH = '/healthz';
/** Starts tried on a fresh internal port after the app found its port taken (EADDRINUSE) before one gives up. */
export const PORT_ATTEMPTS = 5;

/** A process of this app and the internal port it listens on (moved when the app finds it taken at start). */
interface Slot {
  supervisor: AppSupervisor;
  port: PortReservation;
}

export class Instance {
  /** How the last HealthCheck command probed this app; the probe after a crash restart does the same. */
  healthSettings: HealthProbeSettings | undefined;

  /** The process the gate sends traffic to, and the internal port it listens on; adopt() replaces both. */
  private current: Slot;
  /** Second processes of a start-first restart under way (new before the switch, old while it drains), with their ports: close() stops them too. */
  private readonly others = new Map<AppSupervisor, PortReservation>();

  private constructor(
    readonly app: string,
    readonly appDir: string,
    port: PortReservation,
    readonly gate: GateClient,
    private readonly state: AgentState,
    private readonly events: EventSink,
    private readonly logger: Logger,
    /** Every service port this agent serves on: never an internal port. */
    private readonly servicePorts: number[],
    /** The gate's service port, reserved so no agent on the host takes it as an internal port. */
    private readonly serviceHold: PortReservation | null,
    private readonly makeSupervisor: (instance: Instance, portOf: () => number) => AppSupervisor,
    /** --gate-hold: the hold limit of an app whose AppSpec sets none. */
    private readonly defaultHoldMs: number,
  ) {
    const slot: Slot = { port, supervisor: undefined as unknown as AppSupervisor };
    slot.supervisor = makeSupervisor(this, () => slot.port.port);
    this.current = slot;
  }

  get supervisor(): AppSupervisor {
    return this.current.supervisor;
  }

  get internalPort(): number {
    return this.current.port.port;
  }

  /** A fresh internal port, reserved host-wide, for a second process (start-first) or a move. */
  reservePort(): Promise<PortReservation> {
    return reserveInternalPort({ avoid: this.servicePorts });
  }

  /** A supervisor for a second process of this app on `port` (start-first); it becomes the instance's with adopt(). */
  newSupervisor(port: PortReservation): AppSupervisor {
    const supervisor = this.makeSupervisor(this, () => port.port);
    this.others.set(supervisor, port);
    return supervisor;
  }

  /** A second process is stopped: the instance forgets it and gives its port back. */
  retire(supervisor: AppSupervisor): void {
    this.others.get(supervisor)?.release();
    this.others.delete(supervisor);
    this.recordSpares();
  }

  /** Records the second processes' pids, so an agent that dies now has them stopped by the next run. */
  recordSpares(): void {
    const spares = [...this.others.keys()].flatMap((s) => (s.pid && s.pidStartTime ? [{ pid: s.pid, pidStartTime: s.pidStartTime }] : []));
    void this.state.updateApp(this.app, { spares }).catch(() => undefined);
  }

  /**
   * Makes `supervisor` (a second process from newSupervisor) the instance's process: the gate switches to it in one
   * step, and the record names its edition, pid and port. Returns the previous one, still running, for the caller to drain.
   */
  async adopt(supervisor: AppSupervisor, edition: string, spec: AppSpec): Promise<{ supervisor: AppSupervisor; port: number }> {
    const port = this.others.get(supervisor);
    if (!port) throw new Error(`app ${this.app}: adopt() of a process this instance did not start`);
    const previous = this.current;
    this.current = { supervisor, port };
    this.others.delete(supervisor);
    this.others.set(previous.supervisor, previous.port);
    await this.gate.setTarget(port.port);
    await this.gate.syncExpected();
    const record = this.state.app(this.app);
    const previousEdition = record.activeEdition && record.activeEdition !== edition ? record.activeEdition : record.previousEdition;
    await this.state.updateApp(this.app, {
      activeEdition: edition,
      previousEdition,
      desired: 'running',
      spec,
      internalPort: port.port,
      pid: supervisor.pid,
      pidStartTime: supervisor.pidStartTime,
      pidEdition: edition,
    });
    this.recordSpares();
    return { supervisor: previous.supervisor, port: previous.port.port };
  }

  /** Re-adopts (or else reaps) a process a previous agent run left, picks the internal port and opens (or takes over) the gate. */
  static async open(option: InstanceOption, options: AgentOptions, state: AgentState, events: EventSink, logger: Logger, link: GateLink): Promise<Instance> {
    const app = option.app;
    const appDir = state.appDir(app);
    const record = state.app(app);
    const adoptable = await adoptableProcess(app, appDir, state);
    if (!adoptable && record.pid) reapOrphan(record.pid, record.pidStartTime, logger);
    // A start-first's second process the dead agent left: stopped as a stop would (SIGTERM), never adopted.
    for (const spare of record.spares ?? []) stopOrphan(spare.pid, spare.pidStartTime, logger);
    await removeLeftovers(appDir);
    if (options.runAs) {
      // Editions unpacked before --app-user was set (or by an older agent) become readable by the app user too.
      await mkdir(appDir, { recursive: true, mode: 0o750 });
      await grantAppDir(options.dataDir, appDir, options.runAs);
    }
    const servicePorts = options.instances.map((i) => i.servicePort).filter((p) => p > 0);
    // A re-adopted app keeps listening where it listens; the gate's target stays on it.
    // Another agent holding its reservation cannot move it: the app listens there.
    const port = adoptable ? (reservePort(adoptable.internalPort) ?? { port: adoptable.internalPort, release: () => {} }) : await reserveInternalPort({ avoid: servicePorts });
    const internalPort = port.port;
    // Only the process the gate targets speaks for the instance: a second one (start-first) records nothing until adopted.
    const makeSupervisor = (instance: Instance, portOf: () => number): AppSupervisor => {
      const supervisor: AppSupervisor = new AppSupervisor({
        app,
        instanceId: options.id,
        internalPort: portOf(),
        portFor: (spec) => (isSelfDrained(spec) ? gate.port : portOf()),
        logPath: join(appDir, 'app.log'),
        startGraceMs: options.startGraceMs,
        runAs: options.runAs ?? undefined,
        events,
        logger,
        onExpected: () => void instance.gate.syncExpected(),
        afterCrashRestart: (edition, failure, signal) => {
          if (instance.supervisor === supervisor) void instance.afterCrashRestart(edition, failure, signal);
        },
        onPid: (pid, pidStartTime, pidEdition) => {
          if (instance.supervisor !== supervisor) return instance.recordSpares();
          void state.updateApp(app, { pid, pidStartTime, pidEdition }).catch((err: Error) => logger.error({ app, err: err.message }, 'could not record app pid'));
        },
      });
      return supervisor;
    };
    let instance: Instance | undefined;
    let gate: GateClient;
    const selfDrained = isSelfDrained(record.spec);
    const host = option.host ?? options.gateHost;
    try {
      gate = await GateClient.open(
        link,
        {
          app,
          host,
          port: option.servicePort,
          targetPort: internalPort,
          healthPath: record.spec?.healthPath || DEFAULT_HEALTH_PATH,
          queueLimit: options.gateQueue,
          holdMs: record.spec?.holdMs || options.gateHoldMs,
          // Quiesced before this agent restarted and not healthy since: the controller still counts it drained.
          quiesced: (record.quiesced ?? false) && !selfDrained,
          appExpected: adoptable !== undefined,
          // An app that drains itself listens on the service port; the gate binds it only to learn a port 0 choice.
          listen: true,
        },
        () => instance?.supervisor.expected ?? false,
      );
      if (selfDrained && gate.listening) await gate.unlisten();
    } catch (err) {
      port.release();
      throw new Error(`cannot open the gate of app ${app} on ${host}:${option.servicePort}: ${(err as Error).message}`, { cause: err });
    }
    const serviceHold = reservePort(gate.port);
    if (!serviceHold) logger.warn({ app, servicePort: gate.port }, 'another agent on this host reserved this service port as an app\'s internal port');
    instance = new Instance(app, appDir, port, gate, state, events, logger, servicePorts, serviceHold, makeSupervisor, options.gateHoldMs);
    if (adoptable) await instance.readopt(adoptable, logger);
    await state.updateApp(app, { internalPort, spares: [] });
    logger.info({ app, servicePort: gate.port, internalPort, gateTakenOver: gate.adopted, quiesced: gate.quiesced, appAdopted: instance.supervisor.state === 'running' }, 'instance gate listening');
    return instance;
  }

  /** Takes over the process an earlier agent run started; the record names its edition if the agent died before it did. */
  private async readopt(found: AdoptableProcess, logger: Logger): Promise<void> {
    // A stop-first switch (gate quiesced) to another edition was under way: this process may be stopping already, and
    // restore() finishes the switch. A start-first one leaves it serving until the re-sent command switches again.
    const switching = this.state.unfinishedSwitch(this.app);
    const leaving = switching !== undefined && switching.edition !== found.edition && this.gate.quiesced;
    if (!this.supervisor.adopt(found.pid, found.startTime, found.edition, found.spec, this.editionDir(found.edition), leaving)) return;
    const record = this.state.app(this.app);
    if (found.edition !== record.activeEdition) {
      logger.info({ app: this.app, edition: found.edition }, 'the re-adopted process runs an edition not yet recorded as active');
      await this.state.updateApp(this.app, { activeEdition: found.edition, previousEdition: record.activeEdition || record.previousEdition, desired: 'running' });
    }
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

  /** The spec to start `edition` with (the command's, else the last known), once the edition is known to be on disk. */
  async startable(edition: string, spec: AppSpec | undefined): Promise<AppSpec> {
    const appSpec = spec ?? this.state.app(this.app).spec;
    if (!appSpec) throw new NotFoundError(`app ${this.app}: no AppSpec known yet; the command must carry one`);
    if (!edition) throw new NotFoundError(`app ${this.app}: no edition given and none active`);
    if (!(await readMarker(this.appDir, edition))) {
      throw new NotFoundError(`app ${this.app}: edition ${edition} is not on this host (download it first)`);
    }
    return appSpec;
  }

  /** The unpacked directory of one of this app's editions. */
  editionDir(edition: string): string {
    return editionDir(this.appDir, edition);
  }

  /** Starts `edition` (stopping what runs first) and records it as active; the previous active edition is remembered. */
  async activate(edition: string, spec: AppSpec | undefined, note?: { updateOrder: string }): Promise<string> {
    const appSpec = await this.startable(edition, spec);
    const record = this.state.app(this.app);
    await this.gate.setHealthPath(appSpec.healthPath);
    await this.gate.setHoldMs(appSpec.holdMs || this.defaultHoldMs);
    // The gate gives the service port to an app that drains itself before it starts, and takes it back once an old one stopped.
    if (isSelfDrained(appSpec)) await this.gate.unlisten();
    await this.startOnFreePort(edition, appSpec, editionDir(this.appDir, edition), note);
    if (!isSelfDrained(appSpec) && !this.gate.listening) await this.gate.listen();
    const previous = record.activeEdition && record.activeEdition !== edition ? record.activeEdition : record.previousEdition;
    await this.state.updateApp(this.app, { activeEdition: edition, previousEdition: previous, desired: 'running', spec: appSpec, internalPort: this.internalPort });
    return edition;
  }

  /**
   * Starts the app (stopping what runs first) and answers once it is healthy or past its start grace. Its internal port
   * is checked free just before the spawn; an app that still finds it taken (EADDRINUSE) starts again on another.
   */
  private async startOnFreePort(edition: string, spec: AppSpec, dir: string, note?: { updateOrder: string }): Promise<void> {
    const behindGate = !isSelfDrained(spec);
    await this.supervisor.stop(spec.stopTimeoutMs);
    for (let attempt = 1; ; attempt++) {
      if (behindGate && !(await canBind(this.internalPort))) await this.movePort(`port ${this.internalPort} was taken before the start`);
      try {
        await this.supervisor.start(edition, spec, dir, (signal) => this.startedHealthy(spec, signal), note);
        return;
      } catch (err) {
        if (!(err instanceof AppStartError) || !err.portTaken || !behindGate || attempt >= PORT_ATTEMPTS) throw err;
        await this.movePort(err.logLine);
      }
    }
  }

  /** Moves the app to a fresh internal port: the gate forwards there from now on. */
  private async movePort(why: string): Promise<void> {
    const next = await this.reservePort();
    this.logger.warn({ app: this.app, from: this.internalPort, to: next.port, why }, 'internal port taken; the app starts on another');
    this.current.port.release();
    this.current.port = next;
    await this.gate.setTarget(next.port);
  }

  /** Whether a just-started app answers its health check, probed as the last HealthCheck did; false once `signal` aborts. */
  async startedHealthy(spec: AppSpec, signal: AbortSignal, target: ProbeTarget = this): Promise<boolean> {
    const last = this.healthSettings;
    const settings: HealthProbeSettings = {
      path: last?.path || spec.healthPath || DEFAULT_HEALTH_PATH,
      expectedStatus: last?.expectedStatus || 200,
      retries: 0,
      intervalMs: last?.intervalMs || 0,
      timeoutMs: last?.timeoutMs || 0,
      initialIntervalMs: spec.healthInitialIntervalMs || 0,
    };
    return (await probeUntilHealthy(target, settings, signal)).healthy;
  }

  /** Stops the process; `remember` records that it should stay stopped across agent restarts. */
  async stop(remember: boolean): Promise<void> {
    await this.supervisor.stop(this.spec?.stopTimeoutMs);
    if (remember) await this.state.updateApp(this.app, { desired: 'stopped' });
  }

  /**
   * Brings the app back after an agent restart when its record says it should run: a re-adopted process is left as it
   * is; else the edition an unfinished RestartApp/StartApp was moving to (never the old one the controller moved away
   * from), else the active edition. The gate is already as journalled (quiesced or not) before anything starts.
   */
  async restore(logger: Logger): Promise<void> {
    const record = this.state.app(this.app);
    const switching = this.state.unfinishedSwitch(this.app);
    const target = switching && (await readMarker(this.appDir, switching.edition)) ? switching.edition : undefined;
    const adopted = this.supervisor.state === 'running';
    // A re-adopted process stays, unless the agent died switching it stop-first (gate quiesced) to another edition: that
    // switch is finished here. Behind an open gate (start-first) it serves until the re-sent command switches again.
    if (adopted && (!target || target === this.supervisor.edition || !this.gate.quiesced)) return;
    if (!adopted && record.desired !== 'running') return;
    const edition = target ?? record.activeEdition;
    if (!edition) return;
    if (edition !== record.activeEdition) logger.info({ app: this.app, edition, commandId: switching?.id }, 'restoring the edition an unfinished command was moving to');
    try {
      await this.activate(edition, record.spec);
    } catch (err) {
      logger.error({ app: this.app, edition, err: (err as Error).message }, 'could not restore app at agent start');
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

  /** Stops the app (and a start-first's second process) and closes its gate (--stop-gates, tests). */
  async close(): Promise<void> {
    await Promise.all([this.supervisor, ...this.others.keys()].map((s) => s.shutdown(this.spec?.stopTimeoutMs)));
    await this.gate.close();
    this.current.port.release();
    for (const port of this.others.values()) port.release();
    this.serviceHold?.release();
  }

  /** The agent goes; the app keeps running and its gate keeps serving, for the next agent run to adopt. */
  detach(): void {
    for (const supervisor of [this.supervisor, ...this.others.keys()]) supervisor.detach();
    this.gate.detach();
  }
}

interface AdoptableProcess {
  pid: number;
  startTime: string;
  internalPort: number;
  spec: AppSpec;
  edition: string;
}

/** A process an earlier agent run started and recorded, with what re-adopting it needs; undefined when there is none. */
async function adoptableProcess(app: string, appDir: string, state: AgentState): Promise<AdoptableProcess | undefined> {
  const record = state.app(app);
  const edition = record.pidEdition || record.activeEdition;
  const { pid, pidStartTime: startTime, internalPort, spec } = record;
  if (!pid || !startTime || !internalPort || !spec || !edition || isSelfDrained(spec)) return undefined;
  if (processStartTime(pid) !== startTime || !(await readMarker(appDir, edition))) return undefined;
  return { pid, startTime, internalPort, spec, edition };
}
