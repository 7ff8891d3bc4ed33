// Shared set-up and measurements of the fault suites: a small fleet, releases through the admin API, and the counts the table reports.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { connect } from 'nats';
import { expect } from 'vitest';
import { readCommandJournal } from '../../agent/command-journal.js';
import { INGEST_STREAM_NAME, STREAM_NAME } from '../../common/events.js';
import { buildEdition } from '../../examples/demo/package.js';
import { ReleaseSpec, type ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { FINAL_RELEASE_STATUSES } from '../../controller/domain/transitions.js';

export const APP = 'shop';
export const EDITIONS = ['1.0', '2.0'] as const;

export interface AgentPlan {
  id: string;
  group: string;
  /** Extra agent flags (a later --controller overrides the harness's). */
  args?: string[];
}

/** Releases kept short: no start delay, short drains, fast health probes. */
export const QUICK: Partial<ReleaseSpec> = {
  group: 'all',
  batches: 1,
  drainMs: 500,
  reset: 'soft',
  health: { path: '', expectedStatus: 0, retries: 0, intervalMs: 100, timeoutMs: 1_000 },
  start: true,
};

export class FaultFleet {
  readonly dir: string;
  readonly fleet: Fleet;
  readonly ports: Record<string, number> = {};
  /** Every release this fleet ran, in order. */
  readonly releases: string[] = [];

  /** The sample app's start-up time: longer makes health steps last long enough to be caught. */
  startDelayMs = 0;

  constructor(name: string, readonly plans: AgentPlan[]) {
    this.dir = mkdtempSync(join(tmpdir(), `fleetwave-faults-${name}-`));
    this.fleet = new Fleet(this.dir, process.env.FLEETWAVE_FAULTS_LOGS ? join(process.env.FLEETWAVE_FAULTS_LOGS, name) : undefined);
  }

  get controllerArgs(): string[] {
    return ['--heartbeat-timeout', '3s'];
  }

  /** Given nats-server, a controller and the agents, the app with editions 1.0 and 2.0, and 1.0 deployed everywhere. */
  async start(controllerArgs = this.controllerArgs): Promise<void> {
    await this.fleet.startNats();
    await this.fleet.startController(controllerArgs);
    for (const plan of this.plans) {
      this.ports[plan.id] = await freePort();
      await this.startAgent(plan.id);
    }
    await this.fleet.adminClient.waitForAgents(this.plans.map((p) => p.id), 30_000);
    // Stop-first: this suite checks the quiesce ─▶ drain ─▶ restart pipeline (start-first has its own suite).
    const app = await this.fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', `START_DELAY_MS=${this.startDelayMs}`, '--stop-timeout', '5s', '--update-order', 'stop-first']);
    expect(app.code, app.stderr).toBe(0);
    for (const edition of EDITIONS) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(this.dir, 'packages') });
      const installed = await this.fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]);
      expect(installed.code, installed.stderr).toBe(0);
    }
    const first = await this.release({ edition: '1.0' });
    expect(first.release?.status, first.release?.message).toBe('Released');
  }

  async startAgent(id: string, extraArgs: string[] = []): Promise<void> {
    const plan = this.plans.find((p) => p.id === id)!;
    await this.fleet.startAgent(id, plan.group, { [APP]: this.ports[id]! }, [...(plan.args ?? []), ...extraArgs]);
  }

  agentDir(id: string): string {
    return join(this.dir, 'agents', id);
  }

  /** Creates (and starts) a release; returns its id. */
  async create(spec: Partial<ReleaseSpec>): Promise<string> {
    const client = this.fleet.adminClient.client;
    const detail = await new Promise<ReleaseDetail>((resolve, reject) =>
      client.createRelease({ spec: ReleaseSpec.fromPartial({ ...QUICK, app: APP, ...spec }), dryRun: false }, new Metadata(), { deadline: Date.now() + 10_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
    const id = detail.release!.id;
    this.releases.push(id);
    return id;
  }

  async waitEnd(id: string, timeoutMs = 60_000): Promise<ReleaseDetail> {
    return this.fleet.adminClient.waitForRelease(id, [...FINAL_RELEASE_STATUSES], timeoutMs);
  }

  async release(spec: Partial<ReleaseSpec>, timeoutMs = 60_000): Promise<ReleaseDetail> {
    return this.waitEnd(await this.create(spec), timeoutMs);
  }

  /** Instances (of the listed agents) that do not run `expected[agent]` as reported by the agents, and do not serve it. */
  async wrongEditions(expected: Record<string, string>): Promise<string[]> {
    const wrong: string[] = [];
    const reported = await this.fleet.adminClient.instances(APP);
    for (const [agent, edition] of Object.entries(expected)) {
      const instance = reported.find((i) => i.instance === agent);
      const served = await fetch(`http://127.0.0.1:${this.ports[agent]}/`).then((r) => r.json() as Promise<{ edition?: string }>).catch(() => ({ edition: 'none' }));
      if (instance?.edition !== edition || instance.status !== 'running' || served.edition !== edition) {
        wrong.push(`${agent}: reports ${instance?.edition}/${instance?.status}, serves ${served.edition}, expected ${edition}`);
      }
    }
    return wrong;
  }

  /** Waits until every listed agent serves `expected[agent]` (after an agent restart its app needs a moment). */
  async settledEditions(expected: Record<string, string>, timeoutMs = 20_000): Promise<string[]> {
    try {
      await waitFor('instances on their expected editions', async () => (await this.wrongEditions(expected)).length === 0, timeoutMs);
      return [];
    } catch {
      return this.wrongEditions(expected);
    }
  }

  /** Per agent, journal entries whose handler began more than once: id → runs. */
  journalReruns(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const plan of this.plans) {
      const journal = readCommandJournal(this.agentDir(plan.id));
      out[plan.id] = Object.fromEntries(Object.entries(journal).filter(([, e]) => e.runs > 1).map(([id, e]) => [id, e.runs]));
    }
    return out;
  }

  /** Commands the controller enqueued beyond one per step it began (the outbox against the step records). */
  controllerDuplicates(): number {
    const db = new Database(join(this.dir, 'controller', 'fleetwave.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db
        .prepare(
          `SELECT o.release_id, o.instance, count(*) AS commands,
             (SELECT count(*) FROM steps s WHERE s.release_id = o.release_id AND s.instance = o.instance AND s.step != 'drain') AS steps
           FROM outbox o GROUP BY o.release_id, o.instance`,
        )
        .all() as Array<{ commands: number; steps: number }>;
      return rows.reduce((sum, r) => sum + Math.max(0, r.commands - r.steps), 0);
    } finally {
      db.close();
    }
  }

  /** Expected instance events (from JetStream) missing for the releases' instances; see missingEvents. */
  async eventsLost(): Promise<{ lost: number; missing: string[] }> {
    // Late is not lost: an event a killed controller had taken from the ingest queue comes back to its successor
    // after the queue's ack wait (5 s), possibly after the release ended. Lost is what is still missing at the deadline.
    let missing: string[] = [];
    let events: InstanceEvent[] = [];
    await waitFor('every expected instance event in the stream', async () => {
      events = await readInstanceEvents(this.fleet.nats!.url);
      missing = [];
      for (const id of this.releases) missing.push(...missingEvents(await this.fleet.adminClient.release(id), events));
      return missing.length === 0;
    }, 20_000).catch(() => {});
    if (missing.length > 0) console.error(`events missing: ${missing.join(', ')}\n${await this.whereAreThey(missing, events).catch((err: Error) => `(post-mortem failed: ${err.message})`)}`);
    return { lost: missing.length, missing };
  }

  /** For a post-mortem: the ingest queue's state and every event the stream kept of the instances concerned. */
  private async whereAreThey(missing: string[], events: InstanceEvent[]): Promise<string> {
    const lines: string[] = [];
    const nc = await connect({ servers: this.fleet.nats!.url });
    try {
      const jsm = await nc.jetstreamManager();
      const ingest = await jsm.consumers.info(INGEST_STREAM_NAME, 'fleetwave-controller').catch((err: Error) => err.message);
      lines.push(`ingest consumer: ${typeof ingest === 'string' ? ingest : JSON.stringify({ pending: ingest.num_pending, ackPending: ingest.num_ack_pending, redelivered: ingest.num_redelivered, delivered: ingest.delivered })}`);
      const stream = await jsm.streams.info(STREAM_NAME);
      lines.push(`events stream: ${stream.state.messages} messages, last seq ${stream.state.last_seq}; read ${events.length} instance events`);
    } finally {
      await nc.close();
    }
    for (const key of new Set(missing.map((m) => m.split(':')[0]!))) {
      const [release, instance] = key.split(' ');
      const detail = await this.fleet.adminClient.release(release!);
      const r = detail.release!;
      lines.push(`${key}: release ${r.createdUnixMs}..${r.finishedUnixMs}; steps ${JSON.stringify(detail.instances.find((i) => i.instance === instance)?.steps.map((s) => [s.step, s.status, s.startedUnixMs]))}`);
      for (const e of events) {
        if (e.instance === instance && e.time >= r.createdUnixMs - 30_000 && e.time <= r.finishedUnixMs + 30_000) lines.push(`  ${e.time} ${e.type} ${e.edition ?? ''}`);
      }
    }
    return lines.join('\n');
  }

  async stop(): Promise<void> {
    await this.fleet.stopAll();
    // FLEETWAVE_KEEP_FAULT_DIR=1 keeps the NATS store, databases and app logs of a failed trial for a post-mortem.
    if (!process.env.FLEETWAVE_KEEP_FAULT_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface InstanceEvent {
  type: string;
  time: number;
  instance: string;
  edition?: string;
}

/** Every instance event of APP that JetStream kept, in stream order. */
export async function readInstanceEvents(natsUrl: string): Promise<InstanceEvent[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const consumer = await nc.jetstream().consumers.get(STREAM_NAME, { filterSubjects: `fleetwave.events.${APP}.instance.>` });
    const events: InstanceEvent[] = [];
    // Each message says how many matching ones follow it: read until that reaches 0 (an empty fetch on a busy server
    // is not the end); three empty fetches in a row end an empty stream.
    for (let pending = -1, empty = 0; pending !== 0 && empty < 3; ) {
      let got = 0;
      for await (const m of await consumer.fetch({ max_messages: 1_000, expires: 1_000 })) {
        got++;
        pending = m.info.pending;
        const e = m.json<{ type: string; time: string; data: { instance: string; edition?: string } }>();
        events.push({ type: e.type.replace('io.fleetwave.instance.', ''), time: Date.parse(e.time), instance: e.data.instance, edition: e.data.edition });
        if (pending === 0) break;
      }
      empty = got === 0 ? empty + 1 : 0;
    }
    return events;
  } finally {
    await nc.close();
  }
}

/**
 * For each instance the release moved, the events its pipeline must have produced, in order, between the release's
 * creation and its end: upgrade quiesce.started → drained → started(to) → healthy(to); deploy started(to) → healthy(to).
 */
export function missingEvents(detail: ReleaseDetail, events: InstanceEvent[]): string[] {
  const release = detail.release!;
  const to = release.edition;
  const from = release.createdUnixMs - 50;
  const until = release.finishedUnixMs + 2_000;
  const missing: string[] = [];
  for (const instance of detail.instances) {
    if (instance.status !== 'released') continue;
    const steps = instance.steps.map((s) => s.step);
    const expected: Array<{ type: string; edition?: string }> = steps.includes('quiesce')
      ? [{ type: 'quiesce.started' }, { type: 'drained' }, { type: 'started', edition: to }, { type: 'healthy', edition: to }]
      : steps.includes('start')
        ? [{ type: 'started', edition: to }, { type: 'healthy', edition: to }]
        : [];
    // Events of one millisecond keep their pipeline order: JetStream's order is the order they reached the controller,
    // and a `quiesce.started` redelivered after a controller kill comes after the `drained` of the same millisecond.
    const mine = events
      .filter((e) => e.instance === instance.instance && e.time >= from && e.time <= until)
      .sort((a, b) => a.time - b.time || pipelineRank(a.type) - pipelineRank(b.type));
    let at = 0;
    for (const want of expected) {
      const found = mine.findIndex((e, i) => i >= at && e.type === want.type && (!want.edition || e.edition === want.edition));
      if (found < 0) missing.push(`${release.id} ${instance.instance}: ${want.type}${want.edition ? `(${want.edition})` : ''}`);
      else at = found + 1;
    }
  }
  return missing;
}

const PIPELINE_ORDER = ['quiesce.started', 'drain.progress', 'drained', 'stopped', 'started', 'healthy'];

/** Where an event type comes in an instance's pipeline (other types last). */
function pipelineRank(type: string): number {
  const rank = PIPELINE_ORDER.indexOf(type);
  return rank < 0 ? PIPELINE_ORDER.length : rank;
}

/** The other edition of the two. */
export function flip(edition: string): string {
  return edition === '1.0' ? '2.0' : '1.0';
}

/** The steps running now, one per instance that runs one. */
export function runningSteps(detail: ReleaseDetail): string[] {
  return detail.instances.filter((i) => i.steps.at(-1)?.status === 'running').map((i) => i.steps.at(-1)!.step);
}
