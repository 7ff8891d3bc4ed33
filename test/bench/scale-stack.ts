// The processes of one scale-benchmark run: nats-server, the controller (its output straight to a file, optionally
// under `node --cpu-prof`) and the simulator processes; every child is registered so one call kills them all,
// even on Ctrl-C or an error.
//
//   nats-server ─▶ controller (--insecure, real SQLite file) ─▶ app + edition installed ─▶ sims forked (ready)
//   stop: sims (IPC stop, SIGKILL after 10 s) ─▶ controller (SIGTERM: the profile is written; SIGKILL after 30 s) ─▶ nats
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEdition } from '../../examples/demo/package.js';
import { CLI_MAIN, Proc, repoPath, runCli, startNats, waitFor, type Nats } from '../harness/fleet.js';
import type { DriverMessage, SimConfig, SimCounters, SimMessage, SimTimings } from './scale-protocol.js';

const SIM_MAIN = fileURLToPath(new URL('./scale-sim.js', import.meta.url));
/** Every child still running; killAllNow() is the last resort of the driver's exit handlers. */
const live = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Run directories to remove if the driver is stopped mid-run. */
const dirs = new Set<string>();

/** A fresh run directory under the system temp dir; `forget` it once the run removed (or kept) it. */
export function runDir(): { dir: string; forget: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-scale-'));
  dirs.add(dir);
  return { dir, forget: () => dirs.delete(dir) };
}

/** SIGKILLs every child of the benchmark and removes the run directories (synchronous: usable in an 'exit' handler). */
export function killAllNow(): void {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export async function startStackNats(dir: string): Promise<Nats> {
  const nats = await startNats(join(dir, 'nats'), join(dir, 'nats-server.log'));
  track(nats.proc.child);
  return nats;
}

export interface ScaleController {
  pid: number;
  grpcAddress: string;
  /** The HTTP endpoint (console, JSON API, /events), e.g. http://127.0.0.1:PORT. */
  httpUrl: string;
  logFile: string;
  stop(): Promise<void>;
}

/** `fleetwave controller --insecure` as in test/harness/fleet.ts, at its normal log level, output to a file. */
export async function startScaleController(dir: string, natsUrl: string, cpuProfDir?: string): Promise<ScaleController> {
  const dataDir = join(dir, 'controller');
  mkdirSync(dataDir, { recursive: true });
  const readyFile = join(dir, 'controller-ready.json');
  const logFile = join(dir, 'controller.log');
  const node = cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [];
  const args = [...node, CLI_MAIN, 'controller', '--insecure', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data-dir', dataDir, '--nats', natsUrl, '--ready-file', readyFile];
  // The child writes its log itself: piping ~10,000 "agent connected" lines through this process would cost here.
  const out = openSync(logFile, 'a');
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', out, out] }));
  closeSync(out);
  const proc = new Proc('controller', child);
  const ready = await waitFor('the controller to be ready', () => {
    if (!proc.running) throw new Error(`controller exited early: see ${logFile}`);
    return existsSync(readyFile) ? (JSON.parse(readFileSync(readyFile, 'utf8')) as { grpc: number; http: number }) : undefined;
  }, 30_000);
  return { pid: proc.pid, grpcAddress: `127.0.0.1:${ready.grpc}`, httpUrl: `http://127.0.0.1:${ready.http}`, logFile, stop: () => proc.stop(30_000) };
}

/** Creates `app` and installs edition `edition` from the sample app (agents report `from` running already). */
export async function installApp(dir: string, controller: string, app: string, edition: string): Promise<void> {
  const cli = async (args: string[]) => {
    const result = await runCli(args, controller, { timeoutMs: 60_000 });
    if (result.code !== 0) throw new Error(`fleetwave ${args.join(' ')} failed: ${result.stderr.trim()}`);
    return result.stdout;
  };
  await cli(['app', 'create', app, '--start', 'node server.js']);
  const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
  await cli(['edition', 'install', app, edition, '--file', pkg.path]);
}

/** One forked simulator process and its IPC requests (answers come back in order, per kind). */
class SimChild {
  private readonly waiters = new Map<string, { resolve: (m: SimMessage) => void; reject: (err: Error) => void }[]>();
  private lastError = '';
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    child.on('message', (m: SimMessage) => {
      if (m.type === 'error') this.lastError = m.message;
      this.waiters.get(m.type)?.shift()?.resolve(m);
    });
    child.once('exit', (code) => {
      const err = new Error(`simulator ${child.pid} exited (${code})${this.lastError ? `: ${this.lastError}` : ''}`);
      for (const list of this.waiters.values()) for (const w of list.splice(0)) w.reject(err);
    });
  }

  request<T extends SimMessage['type']>(message: DriverMessage | null, answer: T, timeoutMs = 30_000): Promise<Extract<SimMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return reject(new Error(`simulator ${this.child.pid} is gone${this.lastError ? `: ${this.lastError}` : ''}`));
      const timer = setTimeout(() => reject(new Error(`simulator ${this.child.pid} did not answer ${answer} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(answer) ?? [];
      list.push({
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<SimMessage, { type: T }>);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.waiters.set(answer, list);
      if (message) this.child.send(message);
    });
  }

  tell(message: DriverMessage): void {
    if (this.child.connected) this.child.send(message);
  }
}

/** The simulator processes of one run: `n` agents split evenly over `processes` children. */
export class SimFleet {
  private constructor(
    private readonly sims: SimChild[],
    /** How many agents each simulator process runs. */
    private readonly counts: number[],
  ) {}

  static async start(base: Omit<SimConfig, 'firstIndex' | 'count'>, n: number, processes: number): Promise<SimFleet> {
    const sims: SimChild[] = [];
    const counts: number[] = [];
    const per = Math.ceil(n / processes);
    for (let first = 0; first < n; first += per) {
      const config: SimConfig = { ...base, firstIndex: first, count: Math.min(per, n - first) };
      const child = track(fork(SIM_MAIN, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      sims.push(new SimChild(child));
      counts.push(config.count);
    }
    const fleet = new SimFleet(sims, counts);
    try {
      await Promise.all(sims.map((s) => s.request(null, 'ready', 120_000)));
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  connect(): void {
    for (const s of this.sims) s.tell({ type: 'connect' });
  }

  /** The simulator processes (their CPU shares the machine with the controller's). */
  get pids(): number[] {
    return this.sims.map((s) => s.child.pid ?? 0).filter((pid) => pid > 0);
  }

  /**
   * A rack going silent: the simulator process `index` frozen (SIGSTOP), so its connections stay open and its agents
   * simply stop talking, as hosts behind a dead switch do; returns how many agents it runs.
   */
  freeze(index: number): number {
    this.sims[index]!.child.kill('SIGSTOP');
    this.frozen.add(index);
    return this.counts[index]!;
  }

  thaw(index: number): void {
    if (this.frozen.delete(index)) this.sims[index]!.child.kill('SIGCONT');
  }

  private readonly frozen = new Set<number>();

  mark(): void {
    for (const s of this.sims) s.tell({ type: 'mark' });
  }

  /** The counters of all simulators, summed. */
  async counters(): Promise<SimCounters> {
    const all = await Promise.all(this.sims.map((s) => s.request({ type: 'stats' }, 'stats')));
    const sum = { ...all[0]!.counters };
    for (const { counters } of all.slice(1)) for (const key of Object.keys(sum) as (keyof SimCounters)[]) sum[key] += counters[key];
    return sum;
  }

  async timings(): Promise<SimTimings> {
    const all = await Promise.all(this.sims.map((s) => s.request({ type: 'timings' }, 'timings', 60_000)));
    return { agents: all.flatMap((t) => t.timings.agents), turnaroundsMs: all.flatMap((t) => t.timings.turnaroundsMs) };
  }

  async stop(): Promise<void> {
    for (const index of [...this.frozen]) this.thaw(index);
    await Promise.all(
      this.sims.map(async (s) => {
        s.tell({ type: 'stop' });
        const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
        await s.exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** What one run started, in the order it started them; `stopStack` stops them the other way round. */
export interface StackParts {
  admin?: { close(): void };
  watch?: { close(): Promise<void> | void };
  sims?: SimFleet;
  controller?: ScaleController;
  nats?: Nats;
}

/** Stops whatever of the run's stack is up, then removes its directory (or names it in `line` with --keep). */
export async function stopStack(parts: StackParts, run: { dir: string; forget: () => void }, keep: boolean, line: Record<string, unknown>): Promise<void> {
  parts.admin?.close();
  await parts.watch?.close();
  await parts.sims?.stop();
  await parts.controller?.stop();
  await parts.nats?.stop();
  if (keep) line.dir = run.dir;
  else rmSync(run.dir, { recursive: true, force: true });
  run.forget();
}
