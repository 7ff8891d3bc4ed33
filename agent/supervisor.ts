// Supervises one app's process: spawn in its own process group, stop with SIGTERM then SIGKILL, restart after crashes.
//
//   stopped ──start()──▶ starting ──grace passed or healthy──▶ running ──exit (unexpected)──▶ failed ──backoff──▶ starting
//      ▲                    │ exit during grace: start() throws, stays failed          │
//      └────────────────────┴──────────────── stop(): SIGTERM, SIGKILL after timeout ◀──┘
//   adopt(): a process an earlier agent run started (same pid and /proc start time) is running again, watched by
//   polling /proc since it is not our child; its death counts as a crash like any other.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { whyUnreadable } from './app-access.js';
import type { EventSink } from './events.js';
import { decideRestart, STABLE_UPTIME_MS } from './restart-policy.js';
import { AppStartError, logOffset, startErrorLine } from './start-failure.js';

/** Process states as reported in InstanceReport.process_state. */
export type ProcessState =
  /** Never started, or stopped on purpose. */
  | 'stopped'
  /** Spawned, within its start grace and not yet seen healthy. */
  | 'starting'
  /** Alive past its start grace, or seen healthy within it. */
  | 'running'
  /** Exited unexpectedly (or failed to start); a crash restart may be pending. */
  | 'failed';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SupervisorOptions {
  app: string;
  instanceId: string;
  internalPort: number;
  /** The port an app of this spec listens on, when not always `internalPort` (an app that drains itself takes the service port). */
  portFor?: (spec: AppSpec) => number;
  logPath: string;
  /** How long a start waits for an app that does not answer its health check; AppSpec.start_grace_ms overrides it. */
  startGraceMs: number;
  events: EventSink;
  logger: Logger;
  /** The unprivileged uid/gid the app runs as (--app-user, agent running as root); absent: the agent's own. */
  runAs?: { uid: number; gid: number; user?: string };
  /** Called with the new pid (its /proc start time, its edition) or undefined once it exited, to persist it. */
  onPid: (pid: number | undefined, startTime: string | undefined, edition?: string) => void;
  /**
   * After an automatic restart of a crashed app: the process outlived its start grace (`failure` undefined: probe its
   * health now) or did not (`failure` says why, one line). `signal` aborts once a command stops or starts the app.
   */
  afterCrashRestart?: (edition: string, failure: string | undefined, signal: AbortSignal) => void;
  /** Called when `expected` changes, once the change has settled (the gate answers for a stopped app at once). */
  onExpected?: (expected: boolean) => void;
}

const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** How often an adopted process (not our child: no 'exit' event) is looked for in /proc. */
const ADOPTED_POLL_MS = 100;

/** The process supervised: our child, or one adopted from an earlier agent run. */
type Supervised = Pick<ChildProcess, 'pid'>;
const LOG_ROTATE_BYTES = 64 * 1024 * 1024;

export class AppSupervisor {
  private stateValue: ProcessState = 'stopped';
  private child: Supervised | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private launch: { edition: string; spec: AppSpec; dir: string; at: number } | undefined;
  private stopping = false;
  private crashesInARow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Aborted when a command takes the process over from an automatic restart (and its health probe). */
  private crashRestart: AbortController | undefined;
  private shutDown = false;
  /** Watches an adopted process's /proc entry. */
  private adoptedPoll: NodeJS.Timeout | undefined;
  /** A crash restart's timer fired and its process is being spawned. */
  private respawning = false;
  private expectedTold: boolean | undefined;
  private expectedCheck = false;

  constructor(private readonly options: SupervisorOptions) {}

  get state(): ProcessState {
    return this.stateValue;
  }

  get edition(): string {
    return this.launch?.edition ?? '';
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The running process's /proc start time, which tells it from a later process given the same pid. */
  get pidStartTime(): string | undefined {
    return this.child?.pid ? processStartTime(this.child.pid) : undefined;
  }

  /** True while a process runs or is about to run again, so the gate should wait for it. */
  get expected(): boolean {
    return this.stateValue === 'starting' || this.stateValue === 'running' || this.restartTimer !== undefined || this.respawning;
  }

  /**
   * Starts `edition`; resolves once the process outlived its start grace or `ready` (its health check) passed, whichever
   * comes first. A running process is stopped first. An exit before then throws an AppStartError quoting the log.
   * `note` goes into the `started` event (the update order of a restart).
   */
  async start(edition: string, spec: AppSpec, dir: string, ready?: (signal: AbortSignal) => Promise<boolean>, note?: { updateOrder: string }): Promise<number> {
    await this.stop(spec.stopTimeoutMs);
    const offset = logOffset(this.options.logPath);
    const { exited } = await this.spawn(edition, spec, dir, 'command', note);
    const settled = new AbortController();
    const graceMs = spec.startGraceMs || this.options.startGraceMs;
    const grace = new Promise<undefined>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      settled.signal.addEventListener('abort', () => clearTimeout(timer));
    });
    // A health check that never passes leaves the grace to decide; it is never a failure by itself.
    const healthy = ready ? ready(settled.signal).then((ok) => (ok ? undefined : grace), () => grace) : grace;
    const outcome = await Promise.race([exited, grace, healthy]).finally(() => settled.abort());
    if (outcome) {
      const said = startErrorLine(this.options.logPath, offset);
      throw new AppStartError(
        `app ${this.options.app} ${describeExit(outcome)} right after starting edition ${edition}${said ? `: ${said}` : ''} (see ${this.options.logPath})`,
        said,
      );
    }
    if (this.stateValue === 'starting') this.setState('running');
    return this.child!.pid!;
  }

  /**
   * Takes over a process an earlier agent run started, if `pid` still is that process (same /proc start time).
   * Returns false (nothing adopted) otherwise. The process counts as running; its exit is noticed within 100 ms.
   * `leaving`: a command was switching away from it when the agent died (it may be stopping): its exit is no crash.
   */
  adopt(pid: number, startTime: string, edition: string, spec: AppSpec, dir: string, leaving = false): boolean {
    if (this.child || processStartTime(pid) !== startTime) return false;
    const child: Supervised = { pid };
    this.child = child;
    this.stopping = leaving;
    this.launch = { edition, spec, dir, at: Date.now() };
    this.exited = new Promise<ExitInfo>((resolve) => {
      const poll = (this.adoptedPoll = setInterval(() => {
        if (processStartTime(pid) === startTime && !isZombie(pid)) return;
        clearInterval(poll);
        // Not our child: its exit status is not ours to read.
        resolve({ code: null, signal: null });
      }, ADOPTED_POLL_MS));
    });
    void this.exited.then((exit) => {
      this.onExit(child, exit);
      // Gone while being left (its stop was the dead agent's): stopped, as a stop() would leave it.
      if (leaving && !this.child) this.setState('stopped');
    });
    // Logged, not published as `started`: nothing started, the process kept running across the agent's restart.
    this.options.logger.info({ app: this.options.app, pid, edition }, 'adopted the app process an earlier agent run started');
    this.setState('running');
    return true;
  }

  /** Stops the process group (SIGTERM, then SIGKILL after the timeout); idempotent; cancels a pending crash restart. */
  async stop(timeoutMs?: number): Promise<ExitInfo | undefined> {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.crashRestart?.abort();
    this.crashRestart = undefined;
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) {
      if (this.stateValue !== 'stopped') this.setState('stopped');
      return undefined;
    }
    const timeout = timeoutMs || this.launch?.spec.stopTimeoutMs || DEFAULT_STOP_TIMEOUT_MS;
    const deadline = Date.now() + timeout;
    this.stopping = true;
    killGroup(child.pid!, 'SIGTERM');
    let exit = await Promise.race([exited, delay(timeout).then(() => undefined)]);
    if (!exit) {
      this.options.logger.warn({ app: this.options.app, pid: child.pid, timeoutMs: timeout }, 'app ignored SIGTERM; sending SIGKILL');
      killGroup(child.pid!, 'SIGKILL');
      exit = await exited;
    }
    // Children the app left in its group (a shell's workers) go too.
    while (alive(-child.pid!) && Date.now() < deadline) await delay(50);
    killGroup(child.pid!, 'SIGKILL');
    this.setState('stopped');
    return exit;
  }

  /** Stops the process for good: an agent shutting down must not have a late command start it again. */
  async shutdown(timeoutMs?: number): Promise<void> {
    this.shutDown = true;
    await this.stop(timeoutMs);
  }

  /** The agent goes, the process stays: no more watching, no crash restarts, nothing holding the agent's event loop. */
  detach(): void {
    this.shutDown = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.crashRestart?.abort();
    clearInterval(this.adoptedPoll);
    (this.child as ChildProcess | undefined)?.unref?.();
  }

  /** Resolves once spawned; `exited` (wrapped, or awaiting spawn would wait for the exit) settles when it ends. */
  private async spawn(
    edition: string,
    spec: AppSpec,
    dir: string,
    trigger: 'command' | 'crash-restart' = 'command',
    note?: { updateOrder: string },
  ): Promise<{ exited: Promise<ExitInfo> }> {
    if (this.shutDown) throw new Error(`app ${this.options.app} not started: the agent is shutting down`);
    const [program, ...args] = spec.startCommand;
    if (!program) throw new Error(`app ${this.options.app} has no start command`);
    const env = {
      ...process.env,
      ...spec.env,
      [spec.portEnv || 'PORT']: String(this.options.portFor?.(spec) ?? this.options.internalPort),
      FLEETWAVE_EDITION: edition,
      FLEETWAVE_APP: this.options.app,
      FLEETWAVE_INSTANCE: this.options.instanceId,
    };
    if (!findProgram(program, dir, env.PATH)) throw new Error(`app ${this.options.app} could not start '${program}': not found`);
    // Otherwise the app starts and dies with its runtime's own words ("Cannot find module"), which name no permission.
    const unreadable = this.options.runAs ? whyUnreadable(dir, this.options.runAs) : null;
    if (unreadable) throw new Error(`app ${this.options.app} could not start edition ${edition}: ${unreadable}`);
    // No parent-death signal: the app outlives a killed or restarted agent (the gate host keeps its port), and the
    // next agent run adopts it.
    const argv = [program, ...args];
    const log = openLog(this.options.logPath);
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { cwd: dir, env, detached: true, stdio: ['ignore', log, log], ...this.options.runAs });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      if (this.shutDown) {
        killGroup(child.pid!, 'SIGKILL');
        throw new Error('the agent is shutting down');
      }
    } catch (err) {
      this.setState('failed');
      throw new Error(`app ${this.options.app} could not start '${program}': ${(err as Error).message}`, { cause: err });
    } finally {
      closeSync(log);
    }
    this.child = child;
    this.stopping = false;
    this.launch = { edition, spec, dir, at: Date.now() };
    const exited = new Promise<ExitInfo>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    void exited.then((exit) => this.onExit(child, exit));
    this.setState('starting');
    this.options.onPid(child.pid, processStartTime(child.pid!), edition);
    this.options.events.publish(this.options.app, 'started', { edition, pid: child.pid, trigger, ...note });
    return { exited };
  }

  private onExit(child: Supervised, exit: ExitInfo): void {
    if (child !== this.child) return;
    const expected = this.stopping;
    const launch = this.launch!;
    this.child = undefined;
    this.exited = undefined;
    this.options.onPid(undefined, undefined);
    const error = expected ? '' : `app ${this.options.app} ${describeExit(exit)}`;
    this.options.events.publish(this.options.app, 'stopped', { edition: launch.edition, exitCode: exit.code, signal: exit.signal, expected, error });
    if (expected) return;
    const wasRunning = this.stateValue === 'running';
    this.setState('failed');
    this.crashesInARow = Date.now() - launch.at >= STABLE_UPTIME_MS ? 1 : this.crashesInARow + 1;
    // A start that dies within its grace is reported to the command; only crashes of a running app restart on their own.
    if (!wasRunning) return;
    const decision = decideRestart(exit, this.crashesInARow);
    this.options.logger.warn({ app: this.options.app, edition: launch.edition, ...exit }, decision.reason);
    if (!decision.restart) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restartAfterCrash(launch);
    }, decision.delayMs);
    this.noteExpected();
  }

  /** Starts the crashed app again and hands it to `afterCrashRestart` (which probes its health) once past its grace. */
  private async restartAfterCrash(launch: { edition: string; spec: AppSpec; dir: string }): Promise<void> {
    this.crashRestart?.abort();
    const restart = new AbortController();
    this.crashRestart = restart;
    let failure: string | undefined;
    this.respawning = true;
    try {
      const { exited } = await this.spawn(launch.edition, launch.spec, launch.dir, 'crash-restart').finally(() => {
        this.respawning = false;
        this.noteExpected();
      });
      const exit = await Promise.race([exited, delay(launch.spec.startGraceMs || this.options.startGraceMs).then(() => undefined)]);
      if (exit) failure = `app ${this.options.app} ${describeExit(exit)} right after its crash restart (see ${this.options.logPath})`;
      else if (this.stateValue === 'starting') this.setState('running');
    } catch (err) {
      failure = (err as Error).message;
      this.options.logger.error({ app: this.options.app, err: failure }, 'crash restart failed');
    }
    if (restart.signal.aborted) return;
    this.options.afterCrashRestart?.(launch.edition, failure, restart.signal);
  }

  private setState(next: ProcessState): void {
    if (next === this.stateValue) return;
    this.options.logger.info({ app: this.options.app, from: this.stateValue, to: next, edition: this.edition }, 'app process state');
    this.stateValue = next;
    this.noteExpected();
  }

  /**
   * Tells onExpected after the current step: a crash goes to failed and then schedules its restart in one step, and
   * the gate must not see "stopped" in between (it would fail the requests it holds for the restart).
   */
  private noteExpected(): void {
    if (this.expectedCheck) return;
    this.expectedCheck = true;
    queueMicrotask(() => {
      this.expectedCheck = false;
      const expected = this.expected;
      if (expected === this.expectedTold) return;
      this.expectedTold = expected;
      this.options.onExpected?.(expected);
    });
  }
}

/** Kills a process group a previous agent run left behind, if that pid still is the same process. */
export function reapOrphan(pid: number, startTime: string | undefined, logger: Logger): void {
  const current = processStartTime(pid);
  if (!current || (startTime && current !== startTime)) return;
  logger.warn({ pid }, 'stopping app process left by a previous agent run');
  killGroup(pid, 'SIGKILL');
}

/** Asks a process group a previous agent run left to stop (SIGTERM: it may still be draining), if it still is that process. */
export function stopOrphan(pid: number, startTime: string, logger: Logger): void {
  if (processStartTime(pid) !== startTime) return;
  logger.warn({ pid }, 'stopping the second process of a start-first restart a previous agent run left');
  killGroup(pid, 'SIGTERM');
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Whether `program` can be executed: a path (relative to the edition directory) or a name found on PATH. */
function findProgram(program: string, cwd: string, path: string | undefined): boolean {
  const executable = (file: string): boolean => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes('/')) return executable(resolve(cwd, program));
  return (path ?? '').split(':').some((dir) => dir && executable(join(dir, program)));
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** True while a process (or its group, for a negative pid) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A dead process its parent has not reaped yet still has a /proc entry, in state Z. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Field 22 of /proc/<pid>/stat: tells a recycled pid from the process we started. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function openLog(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  try {
    if (statSync(path).size > LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
  } catch {
    // No log yet.
  }
  return openSync(path, 'a');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
