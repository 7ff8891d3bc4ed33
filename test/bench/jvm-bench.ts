// Releases of a JVM app under load from clients that give up after 2 s: the issue 9 scenarios.
//
//   set up:   nats, controller, N agents; app `hello` (stop-first) and, when the CLI has `--update-order`,
//             `hellosf` (start-first), each on every agent; jars for 1.0 and 2.0; both apps on 1.0
//   scenario: 3 s of load (the baseline latency) ──▶ a rolling release of the other edition under the same load
//             (the agent-kill scenario kill -9s the first agent 500 ms into its restart and starts it again)
//   figures:  ok, client timeouts, 503s with Retry-After, refused, other failures, held time from the client side
//             (answers slower than the baseline p50 by more than 20 ms), release duration
import { readdirSync, readlinkSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { readGateStats } from '../../agent/data-path.js';
import { SUBJECT_ROOT, TYPE_PREFIX, type CloudEvent } from '../../common/events.js';
import { Fleet, freePort, waitFor } from '../harness/fleet.js';
import { buildJars, JVM_START } from './jvm-package.js';
import { ClientLoad, type ClientCounts } from './loadgen.js';
import { releaseOverhead } from './overhead.js';

const STOP_FIRST_APP = 'hello';
const START_FIRST_APP = 'hellosf';
const BEFORE_MS = 3000;
/** How far into an instance's restart step the agent-kill scenario kills its agent: mid-way through the JVM's 2 s stop. */
const KILL_AFTER_MS = 500;

export interface JvmScenario {
  name: string;
  order: 'stop-first' | 'start-first';
  reset: 'soft' | 'hard';
  /** kill -9 the agent of the first instance to restart, and start it again at once. */
  killAgent?: boolean;
}

export const JVM_SCENARIOS: JvmScenario[] = [
  { name: 'jvm-stop-first-soft', order: 'stop-first', reset: 'soft' },
  { name: 'jvm-stop-first-hard', order: 'stop-first', reset: 'hard' },
  { name: 'jvm-start-first-soft', order: 'start-first', reset: 'soft' },
  { name: 'jvm-agent-kill', order: 'stop-first', reset: 'soft', killAgent: true },
];

export interface JvmFigures extends Omit<ClientCounts, 'other'> {
  scenario: string;
  instances: number;
  /** Failures that are none of the above, by reason. */
  failures: Record<string, number>;
  held: number;
  heldP50Ms: number;
  heldP99Ms: number;
  heldMaxMs: number;
  /** The gates' own figures for the release (gate host stats, all instances): held then forwarded, and 503s. */
  gateHeld: number;
  gateGaveUp: number;
  /** The highest p99 and max over the instances' gates. */
  gateHeldP99Ms: number;
  gateHeldMaxMs: number;
  p50BeforeMs: number;
  releaseMs: number;
  status: string;
  machine: string;
}

export type JvmLine = JvmFigures | { scenario: string; skipped: string; machine: string };

interface AgentSpec {
  id: string;
  group: string;
  ports: Record<string, number>;
}

export class JvmFleet {
  private readonly fleet: Fleet;
  private readonly agents: AgentSpec[] = [];
  private readonly active: Record<string, string> = {};
  private startFirst = false;
  private nc: NatsConnection | undefined;
  private readonly ended = new Set<string>();
  /** While armed, the first restart step of a release makes this kill its agent. */
  private killArmed: ((instance: string) => void) | undefined;

  private constructor(private readonly dir: string, readonly instances: number, private readonly concurrency: number, private readonly appMs: number) {
    this.fleet = new Fleet(join(dir, 'jvm'));
  }

  static async start(dir: string, o: { instances: number; concurrency: number; appMs: number }): Promise<JvmFleet> {
    const bench = new JvmFleet(dir, o.instances, o.concurrency, o.appMs);
    try {
      await bench.setUp();
    } catch (err) {
      await bench.stop();
      throw err;
    }
    return bench;
  }

  private async setUp(): Promise<void> {
    const fleet = this.fleet;
    await fleet.startNats();
    this.nc = await connect({ servers: fleet.nats!.url });
    this.nc.subscribe(`${SUBJECT_ROOT}.*.release.*`, { callback: (_err, msg) => this.onReleaseEvent(msg.json()) });
    await fleet.startController();
    const apps = [STOP_FIRST_APP];
    await this.createApp(STOP_FIRST_APP, 'stop-first');
    this.startFirst = await this.createApp(START_FIRST_APP, 'start-first');
    if (this.startFirst) apps.push(START_FIRST_APP);
    for (let i = 1; i <= this.instances; i++) {
      const ports: Record<string, number> = {};
      for (const app of apps) ports[app] = await freePort();
      const spec = { id: `j${String(i).padStart(2, '0')}`, group: i <= this.instances / 2 ? 'blue' : 'green', ports };
      this.agents.push(spec);
      await fleet.startAgent(spec.id, spec.group, spec.ports);
    }
    await fleet.adminClient.waitForAgents(this.agents.map((a) => a.id), 60_000);
    const jars = await buildJars(join(this.dir, 'jars'), ['1.0', '2.0']);
    for (const app of apps) {
      for (const [edition, jar] of Object.entries(jars)) await this.cli(['edition', 'install', app, edition, '--file', jar, '--as', 'hello.jar']);
      const id = await this.release(app, ['--edition', '1.0', '--batches', '1', '--drain', '1s']);
      const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 180_000);
      if (detail.release?.status !== 'Released') throw new Error(`deploying ${app} 1.0 ended ${detail.release?.status}: ${detail.release?.message}`);
      this.active[app] = '1.0';
    }
  }

  /**
   * `app create` with `--update-order ORDER`; a CLI without the flag still gets a stop-first app (today's only
   * order) and false back for start-first.
   */
  private async createApp(app: string, order: 'stop-first' | 'start-first'): Promise<boolean> {
    const args = ['app', 'create', app, '--start', JVM_START, '--env', 'STOP_DELAY_MS=2000', '--stop-timeout', '10s'];
    const result = await this.fleet.cli([...args, '--update-order', order]);
    if (result.code === 0) return true;
    if (!/update-order/.test(result.stderr)) throw new Error(`fleetwave app create ${app} failed: ${result.stderr.trim()}`);
    if (order === 'start-first') return false;
    await this.cli(args);
    return true;
  }

  async run(scenario: JvmScenario): Promise<JvmLine> {
    const machine = `${cpus().length} cores`;
    if (scenario.order === 'start-first' && !this.startFirst) return { scenario: scenario.name, skipped: 'start-first not available', machine };
    const app = scenario.order === 'start-first' ? START_FIRST_APP : STOP_FIRST_APP;
    const urls = this.agents.map((a) => `http://127.0.0.1:${a.ports[app]}${this.appMs > 0 ? `/slow?ms=${this.appMs}` : '/'}`);
    const before = await this.load(urls, () => new Promise((r) => setTimeout(r, BEFORE_MS)));
    const target = this.active[app] === '1.0' ? '2.0' : '1.0';
    let id = '';
    if (scenario.killAgent) this.killArmed = (instance) => void this.killAndRestart(instance);
    await this.gateStats(app, true);
    const during = new ClientLoad({ urls, concurrency: this.concurrency });
    const summary = await this.loaded(during, async () => {
      id = await this.release(app, ['--edition', target, '--strategy', 'rolling', '--batches', '2', '--reset', scenario.reset, '--batch-mode', 'auto', '--wait', '0s', '--drain', '5s']);
      await waitFor(`release ${id} to end`, () => this.ended.has(id), 300_000);
    });
    this.killArmed = undefined;
    const gate = await this.gateStats(app);
    const detail = await this.fleet.adminClient.release(id);
    if (detail.release?.status === 'Released') this.active[app] = target;
    const { other, ...counts } = summary;
    return {
      scenario: scenario.name,
      instances: this.instances,
      ok: counts.ok,
      clientTimeouts: counts.clientTimeouts,
      retryAfter503: counts.retryAfter503,
      refused: counts.refused,
      failures: other,
      ...during.held(before.latencyMs.p50),
      ...gate,
      p50BeforeMs: before.latencyMs.p50,
      releaseMs: releaseOverhead(detail).wallMs,
      status: detail.release?.status ?? '',
      machine,
    };
  }

  /** The app's hold figures summed (counts) or maxed (times) over every agent's gate host; `reset` starts afresh. */
  private async gateStats(app: string, reset = false) {
    const figures = await Promise.all(this.agents.map((a) => readGateStats(join(this.fleet.dir, 'agents', a.id), reset).then((s) => s[app])));
    const known = figures.filter((f) => f !== undefined);
    return {
      gateHeld: known.reduce((n, f) => n + f.held, 0),
      gateGaveUp: known.reduce((n, f) => n + f.gaveUp, 0),
      gateHeldP99Ms: Math.max(0, ...known.map((f) => f.p99Ms)),
      gateHeldMaxMs: Math.max(0, ...known.map((f) => f.maxMs)),
    };
  }

  async stop(): Promise<void> {
    await this.nc?.close();
    await this.fleet.stopAll();
    // A JVM whose agent was killed mid-restart may outlive it: end those still running in this bench's data dirs.
    for (const pid of processesUnder(this.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }

  private onReleaseEvent(event: CloudEvent<{ release: string; to?: string; instance?: string; step?: string; stepStatus?: string }>): void {
    const d = event.data;
    if (event.type === `${TYPE_PREFIX}.release.status.changed` && (d.to === 'Released' || d.to === 'Release failed')) this.ended.add(d.release);
    const restarting = d.step === 'restart' || d.step === 'hard-reset' || d.step === 'stop';
    if (event.type === `${TYPE_PREFIX}.release.instance.step` && restarting && d.stepStatus === 'running' && this.killArmed && d.instance) {
      const kill = this.killArmed;
      this.killArmed = undefined;
      setTimeout(() => kill(d.instance!), KILL_AFTER_MS);
    }
  }

  /** kill -9 the agent, then start it again on the same data dir and service ports, as a supervisor would. */
  private async killAndRestart(instance: string): Promise<void> {
    const spec = this.agents.find((a) => a.id === instance);
    const agent = this.fleet.agents.find((a) => a.id === instance);
    if (!spec || !agent) return;
    await agent.kill();
    await this.fleet.startAgent(spec.id, spec.group, spec.ports);
  }

  private async load(urls: string[], during: () => Promise<unknown>) {
    return this.loaded(new ClientLoad({ urls, concurrency: this.concurrency }), during);
  }

  private async loaded(load: ClientLoad, during: () => Promise<unknown>) {
    load.start();
    try {
      await waitFor('requests to flow', () => load.total > 0);
      await during();
    } catch (err) {
      // No client outlives a failed scenario.
      await load.stop();
      throw err;
    }
    return load.stop();
  }

  private async release(app: string, args: string[]): Promise<string> {
    const out = await this.cli(['release', 'create', app, '--group', 'all', ...args]);
    return out.trim().split(/\s+/).pop()!;
  }

  private async cli(args: string[]): Promise<string> {
    const result = await this.fleet.cli(args);
    if (result.code !== 0) throw new Error(`fleetwave ${args.join(' ')} failed: ${result.stderr.trim()}`);
    return result.stdout;
  }
}

/** Pids of processes whose working directory is under `dir` (the apps the agents started there). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // Exited, or not ours to read.
    }
  }
  return pids.filter((pid) => pid !== process.pid);
}
