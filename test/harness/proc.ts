// A child process of a test (nats-server, controller, agent) whose output goes to a log file or is kept in memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** A child process whose output goes to a log file (or is kept in memory) and that can be stopped. */
export class Proc {
  readonly exited: Promise<number | null>;
  private output = '';
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    logFile?: string,
  ) {
    if (logFile) {
      mkdirSync(dirname(logFile), { recursive: true });
      const out = createWriteStream(logFile, { flags: 'a' });
      // Two pipes into one file: neither may end it (the other's last bytes would be a write after end); the
      // child's 'close' (both pipes done) does.
      child.stdout?.pipe(out, { end: false });
      child.stderr?.pipe(out, { end: false });
      child.once('close', () => out.end());
    } else {
      const keep = (chunk: Buffer) => {
        this.output = (this.output + chunk.toString()).slice(-20_000);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
    }
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal ? -1 : null))));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last output kept in memory (when no log file was given). */
  tail(): string {
    return this.output;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** `env` is added to this process's environment (a key set to undefined is left out). */
export function spawnProc(name: string, command: string, args: string[], logFile?: string, env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  return new Proc(name, child, logFile);
}
