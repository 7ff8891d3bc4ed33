// The keeper: `fleetwave agent --self-upgrade` runs the agent as its child (the worker) so the agent can replace its
// own program without execve (docs/agent-upgrade.md). It runs no agent code itself: it spawns, watches and rolls back.
//
//   kept ──exit 75 + next.json──▶ trial ──"connected" with the version, within trialMs──▶ commit (current.json) ──▶ kept
//                                   └──exit, or no "connected" in time──▶ failed.json, kept again (rollback)
//   kept ──any other exit──▶ the keeper exits with that code (systemd restarts it)
//   SIGTERM/SIGINT ──▶ forwarded to the worker; the keeper exits when it does
import { spawn, type ChildProcess } from 'node:child_process';
import { selfCommand } from '../../common/artifact.js';
import { formatDuration } from '../../common/durations.js';
import type { Logger } from '../../common/logger.js';
import {
  clearNext,
  pruneVersions,
  KEEPER_ENV,
  launchOf,
  readCurrent,
  readNext,
  UPGRADE_EXIT_CODE,
  writeCurrent,
  writeFailure,
  type AgentVersion,
} from './versions.js';
import { existsSync } from 'node:fs';

export interface KeeperOptions {
  dataDir: string;
  /** This program as a worker: the version the keeper was installed as, run when no kept version is recorded. */
  self: { command: string; args: string[] };
  /** The agent's flags, given to a staged program (which takes them at top level). */
  agentArgs: string[];
  /** How long a new version has to reach the controller before it is rolled back. */
  trialMs: number;
  /** After SIGTERM, how long a worker being rolled back has before SIGKILL. */
  killAfterMs?: number;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

/** What the worker sends the keeper over IPC. */
export type KeeperMessage = { type: 'connected'; version: string };

type Phase =
  /** Running the kept version (or this program). */
  | { name: 'kept' }
  /** Running a staged version that has not reached the controller yet. */
  | { name: 'trial'; next: AgentVersion; timer: NodeJS.Timeout; failure?: string }
  /** A signal came: the worker is stopping and the keeper ends with it. */
  | { name: 'stopping' };

export class Keeper {
  private phase: Phase = { name: 'kept' };
  private child: ChildProcess | undefined;
  private finish!: (code: number) => void;
  readonly done: Promise<number>;

  constructor(private readonly o: KeeperOptions) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  /** Starts the kept worker; `done` resolves with the code the keeper should exit with. */
  start(): Promise<number> {
    this.launchKept();
    return this.done;
  }

  /** SIGTERM/SIGINT: passed to the worker, which stops as it would alone. */
  signal(signal: NodeJS.Signals): void {
    if (this.phase.name === 'trial') clearTimeout(this.phase.timer);
    this.phase = { name: 'stopping' };
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    else this.finish(0);
  }

  private launchKept(): void {
    const kept = readCurrent(this.o.dataDir);
    if (kept && existsSync(kept.artifact)) this.spawnWorker(launchOf(kept.artifact), this.o.agentArgs, kept.version);
    else this.spawnWorker(this.o.self, [], 'self');
  }

  private spawnWorker(launch: { command: string; args: string[] }, extraArgs: string[], label: string): void {
    const log = this.o.logger;
    const child = spawn(launch.command, [...launch.args, ...extraArgs], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      env: { ...(this.o.env ?? process.env), [KEEPER_ENV]: '1' },
    });
    this.child = child;
    log.info({ pid: child.pid, version: label, program: launch.args[0] ?? launch.command }, 'keeper started the agent');
    child.on('message', (message: KeeperMessage) => this.onMessage(child, message));
    child.on('error', (err) => log.error({ err: err.message, version: label }, 'keeper could not start the agent'));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
  }

  private onMessage(child: ChildProcess, message: KeeperMessage): void {
    if (child !== this.child || message?.type !== 'connected' || this.phase.name !== 'trial') return;
    const { next, timer } = this.phase;
    if (message.version !== next.version) {
      // Its Hello said another version: the controller will not count it, so the keeper rolls back now.
      this.phase.failure = `the staged program reports version ${message.version}, not ${next.version}`;
      return this.endTrial();
    }
    clearTimeout(timer);
    this.phase = { name: 'kept' };
    const previous = readCurrent(this.o.dataDir)?.version;
    void writeCurrent(this.o.dataDir, next).then(
      () => {
        clearNext(this.o.dataDir);
        const removed = pruneVersions(this.o.dataDir, [next.version, ...(previous ? [previous] : [])]);
        this.o.logger.info({ version: next.version, removed }, 'agent upgrade committed: the new version reached the controller');
      },
      (err: Error) => this.o.logger.error({ err: err.message }, 'could not record the committed agent version; the next keeper start runs the old one'),
    );
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = undefined;
    const log = this.o.logger;
    const phase = this.phase;
    if (phase.name === 'stopping') return this.finish(code ?? 0);
    if (phase.name === 'trial') {
      clearTimeout(phase.timer);
      const reason = phase.failure ?? `version ${phase.next.version} exited (${signal ?? `code ${code}`}) before it reached the controller`;
      return this.rollback(phase.next, reason);
    }
    if (code === UPGRADE_EXIT_CODE) {
      const next = readNext(this.o.dataDir);
      if (next && existsSync(next.artifact)) return this.trial(next);
      log.error('the agent asked for an upgrade but no staged version is readable; starting the kept one');
      return this.launchKept();
    }
    log.warn({ code, signal }, 'the agent exited; the keeper exits with it');
    this.finish(code ?? 1);
  }

  private trial(next: AgentVersion): void {
    const timer = setTimeout(() => this.trialTimedOut(), this.o.trialMs);
    this.phase = { name: 'trial', next, timer };
    this.o.logger.info({ version: next.version, trialMs: this.o.trialMs }, 'starting the staged agent version on trial');
    this.spawnWorker(launchOf(next.artifact), this.o.agentArgs, next.version);
  }

  private trialTimedOut(): void {
    if (this.phase.name !== 'trial') return;
    this.phase.failure ??= `version ${this.phase.next.version} did not reach the controller within ${formatDuration(this.o.trialMs)}`;
    this.endTrial();
  }

  /** Stops the worker on trial; its exit (onExit) rolls back with the phase's failure. */
  private endTrial(): void {
    if (this.phase.name !== 'trial') return;
    clearTimeout(this.phase.timer);
    const child = this.child;
    if (!child) return;
    // A worker deaf to SIGTERM is killed.
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), this.o.killAfterMs ?? 10_000);
    kill.unref();
    child.once('exit', () => clearTimeout(kill));
  }

  private rollback(next: AgentVersion, reason: string): void {
    this.phase = { name: 'kept' };
    this.o.logger.error({ version: next.version, reason }, 'agent upgrade rolled back; starting the kept version');
    clearNext(this.o.dataDir);
    writeFailure(this.o.dataDir, { version: next.version, reason, failedUnixMs: Date.now() }).then(
      () => this.launchKept(),
      (err: Error) => {
        this.o.logger.error({ err: err.message }, 'could not record the rolled-back upgrade; the controller learns of it at its deadline');
        this.launchKept();
      },
    );
  }
}

/** How to run this very program again as a worker: the artifact (bundle or single executable), or node with its flags and script. */
export function selfLaunch(): { command: string; args: string[] } {
  const artifact = selfCommand();
  if (artifact) return { command: artifact.execPath, args: [...artifact.args, ...process.argv.slice(2)] };
  return { command: process.execPath, args: [...process.execArgv, ...process.argv.slice(1)] };
}

/** The agent's flags from this process's argv: after `agent` for `fleetwave agent …`, all of them for fleetwave-agent. */
export function agentArgsOf(argv: readonly string[]): string[] {
  const args = argv.slice(2);
  return args[0] === 'agent' ? args.slice(1) : args;
}
