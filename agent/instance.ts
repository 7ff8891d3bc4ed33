// One application instance on this host: its traffic gate, its supervised process and its durable record.
//
//   open: app process of an earlier agent run still alive ──yes──▶ adopted (keeps running, same internal port)
//                                                          └─no──▶ restore(): the edition a dying agent was moving to,
//                                                                   else the active one, behind the gate as journalled
//   gate: opened in the gate host, or adopted from it as it was (quiesced or not, its held requests)
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AppSpec, InstanceReport } from '../proto/gen/fleetwave/v1/agent.js';
import { grantAppDir } from './app-access.js';
import type { EventSink } from './events.js';
import { GateClient } from './gate-client.js';
import type { GateLink } from './gate-link.js';
import { CRASH_RESTART_RETRIES, probeUntilHealthy, publishHealth, type HealthProbeSettings } from './health-probe.js';
import type { AgentOptions, InstanceOption } from './options.js';
import { editionDir, listEditions, readMarker, removeLeftovers } from './package/editions.js';
import { freeInternalPort } from './ports.js';
import type { AgentState } from './state.js';
import { isSelfDrained } from './self-drain.js';
import { AppSupervisor, processStartTime, reapOrphan } from './supervisor.js';

const DEFAULT_HEALTH_PATH = '/healthz';

export class Instance {
  /** How the last HealthCheck command probed this app; the probe after a crash restart does the same. */
  healthSettings: HealthProbeSettings | undefined;

  private constructor(
    readonly app: string,
    readonly appDir: string,
    readonly internalPort: number,
    readonly gate: GateClient,
    readonly supervisor: AppSupervisor,
    private readonly state: AgentState,
    private readonly events: EventSink,
    /** --gate-hold: the hold limit of an app whose AppSpec sets none. */
    private readonly defaultHoldMs: number,
  ) {}

  /** Adopts (or else reaps) a process a previous agent run left, picks the internal port and opens (or adopts) the gate. */
  static async open(option: InstanceOption, options: AgentOptions, state: AgentState, events: EventSink, logger: Logger, link: GateLink): Promise<Instance> {
    const app = option.app;
    const appDir = state.appDir(app);
    const record = state.app(app);
    const adoptable = await adoptableProcess(app, appDir, state);
    if (!adoptable && record.pid) reapOrphan(record.pid, record.pidStartTime, logger);
    await removeLeftovers(appDir);
    if (options.runAs) {
      // Editions unpacked before --app-user was set (or by an older agent) become readable by the app user too.
      await mkdir(appDir, { recursive: true, mode: 0o750 });
      await grantAppDir(options.dataDir, appDir, options.runAs);
    }
    // An adopted app keeps listening where it listens; the gate's target stays on it.
    const internalPort = adoptable ? adoptable.internalPort : await freeInternalPort();
    let instance: Instance | undefined;
    const supervisor = new AppSupervisor({
      app,
      instanceId: options.id,
      internalPort,
      portFor: (spec) => (isSelfDrained(spec) ? gate.port : internalPort),
      logPath: join(appDir, 'app.log'),
      startGraceMs: options.startGraceMs,
      runAs: options.runAs ?? undefined,
      events,
      logger,
      afterCrashRestart: (edition, failure, signal) => void instance?.afterCrashRestart(edition, failure, signal),
      onPid: (pid, pidStartTime, pidEdition) =>
        void state.updateApp(app, { pid, pidStartTime, pidEdition }).catch((err: Error) => logger.error({ app, err: err.message }, 'could not record app pid')),
    });
    // A switch to another edition was under way: this process may be stopping already; restore() finishes the switch.
    const switching = state.unfinishedSwitch(app);
    const leaving = switching !== undefined && switching.edition !== adoptable?.edition;
    if (adoptable && supervisor.adopt(adoptable.pid, adoptable.startTime, adoptable.edition, adoptable.spec, editionDir(appDir, adoptable.edition), leaving)) {
      // Died between starting the new edition and recording it: the running process is the truth.
      if (adoptable.edition !== record.activeEdition) {
        await state.updateApp(app, { activeEdition: adoptable.edition, previousEdition: record.activeEdition || record.previousEdition, desired: 'running' });
      }
    }
    await state.updateApp(app, { internalPort });
    const selfDrained = isSelfDrained(record.spec);
    let gate: GateClient;
    try {
      gate = await GateClient.open(
        link,
        {
          app,
          host: options.gateHost,
          port: option.servicePort,
          targetPort: internalPort,
          healthPath: record.spec?.healthPath || DEFAULT_HEALTH_PATH,
          queueLimit: options.gateQueue,
          holdMs: record.spec?.holdMs || options.gateHoldMs,
          // Quiesced before this agent restarted and not healthy since: the controller still counts it drained.
          quiesced: (record.quiesced ?? false) && !selfDrained,
          appExpected: supervisor.expected,
          // An app that drains itself listens on the service port; the gate binds it only to learn a port 0 choice.
          listen: !(selfDrained && supervisor.expected),
        },
        () => supervisor.expected,
      );
      if (selfDrained && gate.listening && !supervisor.expected) await gate.unlisten();
    } catch (err) {
      throw new Error(`cannot open the gate of app ${app} on ${options.gateHost}:${option.servicePort}: ${(err as Error).message}`, { cause: err });
    }
    logger.info({ app, servicePort: gate.port, internalPort, gateAdopted: gate.adopted, quiesced: gate.quiesced, appAdopted: supervisor.state === 'running' }, 'instance gate listening');
    instance = new Instance(app, appDir, internalPort, gate, supervisor, state, events, options.gateHoldMs);
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
    await this.gate.setHealthPath(appSpec.healthPath);
    await this.gate.setHoldMs(appSpec.holdMs || this.defaultHoldMs);
    // The gate gives the service port to an app that drains itself before it starts, and takes it back once an old one stopped.
    if (isSelfDrained(appSpec)) await this.gate.unlisten();
    await this.supervisor.start(edition, appSpec, editionDir(this.appDir, edition));
    if (!isSelfDrained(appSpec) && !this.gate.listening) await this.gate.listen();
    const previous = record.activeEdition && record.activeEdition !== edition ? record.activeEdition : record.previousEdition;
    await this.state.updateApp(this.app, { activeEdition: edition, previousEdition: previous, desired: 'running', spec: appSpec });
    return edition;
  }

  /** Stops the process; `remember` records that it should stay stopped across agent restarts. */
  async stop(remember: boolean): Promise<void> {
    await this.supervisor.stop(this.spec?.stopTimeoutMs);
    if (remember) await this.state.updateApp(this.app, { desired: 'stopped' });
  }

  /**
   * Brings the app back after an agent restart when its record says it should run: an adopted process is left as it is;
   * else the edition an unfinished RestartApp/StartApp was moving to (never the old one the controller moved away
   * from), else the active edition. The gate is already as journalled (quiesced or not) before anything starts.
   */
  async restore(logger: Logger): Promise<void> {
    const record = this.state.app(this.app);
    const switching = this.state.unfinishedSwitch(this.app);
    const target = switching && (await readMarker(this.appDir, switching.edition)) ? switching.edition : undefined;
    const adopted = this.supervisor.state === 'running';
    // An adopted process stays, unless the agent died switching it to another edition: that switch is finished here.
    if (adopted && (!target || target === this.supervisor.edition)) return;
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

  /** Stops the app and closes its gate (--stop-gates, tests). */
  async close(): Promise<void> {
    await this.supervisor.shutdown(this.spec?.stopTimeoutMs);
    await this.gate.close();
  }

  /** The agent goes; the app keeps running and its gate keeps serving, for the next agent run to adopt. */
  detach(): void {
    this.supervisor.detach();
    this.gate.detach();
  }
}

/** A process an earlier agent run started and recorded, with what adopting it needs; undefined when there is none. */
async function adoptableProcess(app: string, appDir: string, state: AgentState) {
  const record = state.app(app);
  const edition = record.pidEdition || record.activeEdition;
  const { pid, pidStartTime: startTime, internalPort, spec } = record;
  if (!pid || !startTime || !internalPort || !spec || !edition || isSelfDrained(spec)) return undefined;
  if (processStartTime(pid) !== startTime || !(await readMarker(appDir, edition))) return undefined;
  return { pid, startTime, internalPort, spec, edition };
}
