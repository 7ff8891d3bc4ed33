// Releases under load through real agents: a fleet of agents serving the sample app, and one release per scenario.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { SUBJECT_ROOT, TYPE_PREFIX, type CloudEvent } from '../../common/events.js';
import { buildEdition } from '../../examples/demo/package.js';
import { LoadGenerator, oldAfterFirstNew, type LoadSummary, type RecordedRequest } from '../../examples/demo/load.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { startRouter, stopRouter, type RouterProc } from '../harness/router.js';
import { releaseOverhead } from './overhead.js';
import { APP_SERVER } from './processes.js';

export const APP = 'shop';
/** The sample app's simulated start-up work, as the issue asks ("about half a second"). */
export const START_DELAY_MS = 500;
const BEFORE_MS = 3000;

export interface Scenario {
  name: string;
  args: string[];
  reset: 'soft' | 'hard';
}

export const SCENARIOS: Scenario[] = [
  // The app's default update order: start-first.
  { name: 'rolling-soft', reset: 'soft', args: ['--strategy', 'rolling', '--batches', '3', '--reset', 'soft'] },
  { name: 'rolling-soft-stop-first', reset: 'soft', args: ['--strategy', 'rolling', '--batches', '3', '--reset', 'soft', '--update-order', 'stop-first'] },
  { name: 'rolling-hard', reset: 'hard', args: ['--strategy', 'rolling', '--batches', '3', '--reset', 'hard'] },
  { name: 'grouped-soft', reset: 'soft', args: ['--strategy', 'grouped', '--group-size', '1', '--reset', 'soft'] },
  // Issue 9's floor: 20 instances in batches of 5 (`--instances 20 --concurrency 0` for the no-load batch).
  { name: 'batches-of-5', reset: 'soft', args: ['--strategy', 'grouped', '--group-size', '5', '--reset', 'soft'] },
];

/** The same fleet behind `fleetwave router` (haproxy): the whole load goes through its frontend. */
export const ROUTER_SCENARIOS: Scenario[] = [
  { name: 'router-rolling', reset: 'soft', args: ['--strategy', 'rolling', '--batches', '3', '--reset', 'soft', '--update-order', 'stop-first'] },
  { name: 'router-rolling-start-first', reset: 'soft', args: ['--strategy', 'rolling', '--batches', '3', '--reset', 'soft'] },
  { name: 'router-atomic', reset: 'soft', args: ['--strategy', 'atomic', '--reset', 'soft', '--update-order', 'stop-first'] },
];

export interface ReleaseFigures {
  scenario: string;
  instances: number;
  batches: number;
  reset: string;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  p50BeforeMs: number;
  p99BeforeMs: number;
  p50DuringMs: number;
  p99DuringMs: number;
  releaseWallMs: number;
  /** Wall time minus the union of download, drain, stop, restart, hard-reset, start and health steps. */
  overheadMs: number;
  overheadPerBatchMs: number;
  /** CPU time the controller process used during the release, per batch: its own cost, without waiting for a CPU. */
  controllerCpuPerBatchMs: number;
  /** Median of the batches' wall times (batch started to finished). */
  batchP50Ms: number;
  /** The app's own start-to-listen time (spawn to its "listening" line), median of 3, measured at fleet start. */
  appStartMs: number;
  /** The same with 5 apps started at once, as a batch of 5 does on one machine (the slowest of the 5). */
  appStart5Ms: number;
  /** Median duration of each step over the release's instances (where a batch's time goes). */
  stepP50Ms: Record<string, number>;
  status: string;
  /** Behind the router: requests that started after the first answer of the new edition and got the old one. */
  oldAfterFirstNew?: number;
}

/** A controller, nats-server and `instances` agents in two groups, all running edition 1.0. */
export class BenchFleet {
  readonly fleet: Fleet;
  readonly urls: string[] = [];
  private active = '1.0';
  private nc: NatsConnection | undefined;
  /** Agents' drain intervals [quiesce began, drained] in Unix ms, from their `drained` events. */
  private drains: [number, number][] = [];
  /** Releases that ended, from their status events: waiting on these costs the controller nothing (polling GetRelease would). */
  private readonly ended = new Set<string>();
  private appStartMs = 0;
  private appStart5Ms = 0;
  private router: RouterProc | undefined;
  private routerDir = '';
  /** The router's frontend when the fleet runs behind one: every client goes there. */
  private frontUrl = '';

  /** `appMs`: how long each request waits inside the app (simulated I/O); 0 sends every request to `/`. */
  private constructor(dir: string, readonly instances: number, private readonly concurrency: number, private readonly appMs: number) {
    this.fleet = new Fleet(dir, process.env.FLEETWAVE_BENCH_LOGS);
  }

  static async start(dir: string, o: { instances: number; concurrency: number; appMs: number; router?: boolean }): Promise<BenchFleet> {
    const bench = new BenchFleet(dir, o.instances, o.concurrency, o.appMs);
    try {
      await bench.setUp(dir);
      if (o.router) await bench.startRouter(dir);
    } catch (err) {
      // Nobody else holds the half-started fleet: stop its processes before reporting.
      await bench.stop();
      throw err;
    }
    return bench;
  }

  private async setUp(dir: string): Promise<void> {
    const fleet = this.fleet;
    await fleet.startNats();
    this.nc = await connect({ servers: fleet.nats!.url });
    this.nc.subscribe(`${SUBJECT_ROOT}.${APP}.instance.*`, {
      callback: (_err, msg) => {
        const event = msg.json<CloudEvent<{ elapsedMs: number }>>();
        if (event.type !== `${TYPE_PREFIX}.instance.drained`) return;
        const at = Date.parse(event.time);
        this.drains.push([at - event.data.elapsedMs, at]);
      },
    });
    this.nc.subscribe(`${SUBJECT_ROOT}.${APP}.release.*`, {
      callback: (_err, msg) => {
        const event = msg.json<CloudEvent<{ release: string; to?: string }>>();
        if (event.type === `${TYPE_PREFIX}.release.status.changed` && (event.data.to === 'Released' || event.data.to === 'Release failed')) this.ended.add(event.data.release);
      },
    });
    // The controller at its normal log level (info, JSON), as in production.
    await fleet.startController();
    const ids: string[] = [];
    for (let i = 1; i <= this.instances; i++) {
      const id = `h${String(i).padStart(2, '0')}`;
      const port = await freePort();
      this.urls.push(this.appMs > 0 ? `http://127.0.0.1:${port}/slow?ms=${this.appMs}` : `http://127.0.0.1:${port}/`);
      ids.push(id);
      await fleet.startAgent(id, i <= this.instances / 2 ? 'blue' : 'green', { [APP]: port });
    }
    await fleet.adminClient.waitForAgents(ids, 60_000);
    await this.cli(['app', 'create', APP, '--start', 'node server.js', '--env', `START_DELAY_MS=${START_DELAY_MS}`]);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      await this.cli(['edition', 'install', APP, edition, '--file', pkg.path]);
    }
    this.appStartMs = await appStartToListen();
    this.appStart5Ms = await appStartToListen(5);
    const id = await this.release(['--edition', '1.0', '--batches', '1', '--drain', '1s']);
    const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 120_000);
    if (detail.release?.status !== 'Released') throw new Error(`deploying 1.0 ended ${detail.release?.status}: ${detail.release?.message}`);
  }

  private async startRouter(dir: string): Promise<void> {
    const port = await freePort();
    this.routerDir = join(dir, 'router');
    this.router = await startRouter({
      runDir: this.routerDir,
      apps: { [APP]: port },
      controller: this.fleet.controller!.grpcAddress,
      natsUrl: this.fleet.nats!.url,
      id: 'bench-router',
      logFile: process.env.FLEETWAVE_BENCH_LOGS ? join(process.env.FLEETWAVE_BENCH_LOGS, 'router.log') : undefined,
      args: ['--log-level', 'info'],
    });
    this.frontUrl = this.appMs > 0 ? `http://127.0.0.1:${port}/slow?ms=${this.appMs}` : `http://127.0.0.1:${port}/`;
    await waitFor('haproxy to answer through the router', async () => {
      const probe = new LoadGenerator({ urls: [this.frontUrl], concurrency: 1 });
      probe.start();
      await new Promise((r) => setTimeout(r, 50));
      const summary = await probe.stop();
      return summary.ok > 0 && summary.failed === 0;
    }, 30_000);
  }

  /** Steady load for a while (latency before), then the same load for the whole release of the other edition. */
  async run(scenario: Scenario): Promise<ReleaseFigures> {
    const before = await this.load(() => new Promise((r) => setTimeout(r, BEFORE_MS)));
    const target = this.active === '1.0' ? '2.0' : '1.0';
    let id = '';
    this.drains = [];
    const cpuBefore = cpuMs(this.fleet.controller!.pid);
    const during = await this.load(async () => {
      id = await this.release(['--edition', target, '--batch-mode', 'auto', '--wait', '0s', '--drain', '5s', ...scenario.args]);
      await waitFor(`release ${id} to end`, () => this.ended.has(id), 300_000);
    });
    const cpu = cpuMs(this.fleet.controller!.pid) - cpuBefore;
    const oldAfterNew = this.frontUrl ? oldAfterFirstNew(this.lastRequests, target).length : undefined;
    const detail = await this.fleet.adminClient.release(id);
    if (detail.release?.status === 'Released') this.active = target;
    const overhead = releaseOverhead(detail, this.drains);
    return {
      scenario: scenario.name,
      instances: this.instances,
      batches: overhead.batches,
      reset: scenario.reset,
      ok: during.ok,
      failed: during.failed,
      failures: during.failures,
      p50BeforeMs: before.latencyMs.p50,
      p99BeforeMs: before.latencyMs.p99,
      p50DuringMs: during.latencyMs.p50,
      p99DuringMs: during.latencyMs.p99,
      releaseWallMs: overhead.wallMs,
      overheadMs: overhead.overheadMs,
      overheadPerBatchMs: overhead.perBatchMs,
      controllerCpuPerBatchMs: Math.round(cpu / overhead.batches),
      batchP50Ms: median(detail.batches.map((b) => Number(b.finishedUnixMs) - Number(b.startedUnixMs))),
      appStartMs: this.appStartMs,
      appStart5Ms: this.appStart5Ms,
      stepP50Ms: stepMedians(detail.instances.flatMap((i) => i.steps)),
      status: detail.release?.status ?? '',
      ...(oldAfterNew === undefined ? {} : { oldAfterFirstNew: oldAfterNew }),
    };
  }

  async stop(): Promise<void> {
    if (this.routerDir) await stopRouter(this.router, this.routerDir);
    await this.nc?.close();
    await this.fleet.stopAll();
  }

  private lastRequests: readonly RecordedRequest[] = [];

  private async load(during: () => Promise<unknown>): Promise<LoadSummary> {
    // Behind the router the same number of clients share its one frontend.
    const load = this.frontUrl
      ? new LoadGenerator({ urls: [this.frontUrl], concurrency: this.concurrency * this.instances, record: true })
      : new LoadGenerator({ urls: this.urls, concurrency: this.concurrency });
    this.lastRequests = load.requests();
    load.start();
    try {
      // Concurrency 0 (no load) shows the controller's overhead on an otherwise idle machine.
      if (this.concurrency > 0) await waitFor('requests to flow', () => load.snapshot().total > 0);
      await during();
    } catch (err) {
      await load.stop();
      throw err;
    }
    return load.stop();
  }

  private async release(args: string[]): Promise<string> {
    const out = await this.cli(['release', 'create', APP, '--group', 'all', ...args]);
    return out.trim().split(/\s+/).pop()!;
  }

  private async cli(args: string[]): Promise<string> {
    const result = await this.fleet.cli(args);
    if (result.code !== 0) throw new Error(`fleetwave ${args.join(' ')} failed: ${result.stderr.trim()}`);
    return result.stdout;
  }
}

/**
 * The sample app's own spawn-to-listening time (its START_DELAY_MS plus Node's start), median over 3 rounds of
 * `together` apps started at once (a batch of 5 starts 5 Node processes on the same cores).
 */
async function appStartToListen(together = 1): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const round = await Promise.all(Array.from({ length: together }, () => timeOneStart()));
    times.push(Math.max(...round));
  }
  return Math.round(median(times));
}

async function timeOneStart(): Promise<number> {
  const port = await freePort();
  const began = performance.now();
  const child = spawn(process.execPath, [APP_SERVER], { env: { ...process.env, PORT: String(port), START_DELAY_MS: String(START_DELAY_MS) }, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`the sample app exited with ${code} before listening`)));
    });
    return performance.now() - began;
  } finally {
    child.kill('SIGKILL');
  }
}

function stepMedians(steps: { step: string; startedUnixMs: number; finishedUnixMs: number }[]): Record<string, number> {
  const byName = new Map<string, number[]>();
  for (const s of steps) {
    if (Number(s.finishedUnixMs) <= 0) continue;
    const list = byName.get(s.step) ?? [];
    list.push(Number(s.finishedUnixMs) - Number(s.startedUnixMs));
    byName.set(s.step, list);
  }
  return Object.fromEntries([...byName].map(([name, ms]) => [name, median(ms)]));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 0;
}

/** User + system CPU time of a process in ms, from /proc (clock ticks of 10 ms on Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
