// One line of the scale benchmark: a fresh controller and N simulated agents, measured through four phases.
//
//   start (nats, controller, app, sims) ─▶ connect (all N welcomed, confirmed by ListAgents) ─▶ idle window
//     ─▶ agent list ─▶ release to all N in `batches` batches (auto, no wait, 1 s drain), sampled while it runs
//     ─▶ figures ─▶ stop everything
// A phase that fails or times out ends the run with `status` saying so; the line still has what was measured.
import { waitFor } from '../harness/fleet.js';
import { ScaleAdmin, type Timed } from './scale-admin.js';
import { batchGaps, batchSpreads, processUsage, type AgentTiming } from './scale-figures.js';
import { median, percentile, round1 } from './stats.js';
import type { ScaleOptions } from './scale-options.js';
import type { SimCounters } from './scale-protocol.js';
import { installApp, runDir, SimFleet, startScaleController, startStackNats, stopStack, type ScaleController } from './scale-stack.js';
import { ReleaseWatch } from './scale-watch.js';

export const APP = 'shop';
const FROM_EDITION = '1.0';
const TO_EDITION = '2.0';
/** Samples of `release show` and `agent list` while the release runs: the first soon after it starts, then spaced. */
const SAMPLES = 5;
const FIRST_SAMPLE_MS = 500;
const SAMPLE_EVERY_MS = 2_000;

export type ScaleLine = Record<string, unknown>;

/** The controller's default --heartbeat-timeout, which the benchmark's controller runs with. */
const HEARTBEAT_TIMEOUT_MS = 15_000;
const RACK_DEADLINE_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (since: number) => Math.round(performance.now() - since);

export async function runScale(o: ScaleOptions, agents: number, delayMs: number, log: (line: string) => void): Promise<ScaleLine> {
  const { dir, forget } = runDir();
  const started = performance.now();
  const line: ScaleLine = { agents, delayMs, updateOrder: o.updateOrder, batches: o.batches, sims: Math.min(o.sims, agents), sessionsPerChannel: o.sessionsPerChannel };
  let controller: ScaleController | undefined;
  let sims: SimFleet | undefined;
  let admin: ScaleAdmin | undefined;
  let watch: ReleaseWatch | undefined;
  let nats;
  try {
    nats = await startStackNats(dir);
    controller = await startScaleController(dir, nats.url, o.cpuProfDir);
    admin = new ScaleAdmin(controller.grpcAddress);
    await installApp(dir, controller.grpcAddress, APP, TO_EDITION);
    watch = await ReleaseWatch.start(nats.url, APP);
    sims = await SimFleet.start({ controller: controller.grpcAddress, natsUrl: nats.url, app: APP, group: 'bench', idPrefix: 'sim-', sessionsPerChannel: o.sessionsPerChannel, delayMs, edition: FROM_EDITION }, agents, o.sims);
    log(`${agents} agents, ${delayMs} ms: controller and simulators ready after ${elapsed(started)} ms; connecting`);
    if (!(await connectPhase(o, agents, sims, admin, line))) return line;
    log(`${agents} agents: connected in ${line.connectMs} ms; idle for ${o.idleS} s`);
    await idlePhase(o, controller.pid, sims, line);
    const pages = [await admin.listAgentsPage(), await admin.listAgentsPage(), await admin.listAgentsPage()];
    line.agentListMs = median(answered(pages));
    await releasePhase(o, agents, controller.pid, nats.proc.child.pid ?? 0, sims, admin, watch, line, log);
    await rackPhase(sims, admin, line, log);
    return line;
  } catch (err) {
    line.status = `error: ${(err as Error).message.split('\n')[0]}`;
    return line;
  } finally {
    const stopping = performance.now();
    await stopStack({ admin, watch, sims, controller, nats }, { dir, forget }, o.keep, line);
    if (o.cpuProfDir) line.cpuProfDir = o.cpuProfDir;
    log(`${agents} agents: stopped everything in ${elapsed(stopping)} ms`);
  }
}

/** Until every agent is welcomed (the simulators' count) and ListAgents shows them all connected. */
async function connectPhase(o: ScaleOptions, agents: number, sims: SimFleet, admin: ScaleAdmin, line: ScaleLine): Promise<boolean> {
  const began = performance.now();
  const deadline = began + o.connectTimeoutS * 1000;
  sims.connect();
  try {
    await waitFor(`${agents} agents to be welcomed`, async () => (await sims.counters()).connected >= agents, o.connectTimeoutS * 1000);
    await waitFor(`ListAgents to show ${agents} agents connected`, async () => {
      const connected = await admin.connectedAgents(Math.max(1000, deadline - performance.now()));
      return (connected.value ?? 0) >= agents;
    }, Math.max(0, deadline - performance.now()));
  } catch (err) {
    line.status = 'connect timeout';
    line.message = (err as Error).message;
    line.connected = (await sims.counters()).connected;
    return false;
  }
  line.connectMs = elapsed(began);
  return true;
}

/** The controller's RSS and CPU over the idle window (all agents connected, heartbeating, nothing else). */
async function idlePhase(o: ScaleOptions, pid: number, sims: SimFleet, line: ScaleLine): Promise<void> {
  const before = processUsage(pid);
  const counters = await sims.counters();
  const began = performance.now();
  await sleep(o.idleS * 1000);
  const after = processUsage(pid);
  const seconds = (performance.now() - began) / 1000;
  line.idleS = Math.round(seconds);
  line.idleRssMb = round1(after.rssMb);
  line.idleCpuPct = seconds > 0 ? round1(((after.cpuSeconds - before.cpuSeconds) / seconds) * 100) : null;
  line.idleStreamsDropped = (await sims.counters()).streamsDropped - counters.streamsDropped;
}

async function releasePhase(o: ScaleOptions, agents: number, pid: number, natsPid: number, sims: SimFleet, admin: ScaleAdmin, watch: ReleaseWatch, line: ScaleLine, log: (line: string) => void): Promise<void> {
  sims.mark();
  const before = await sims.counters();
  const usage = processUsage(pid);
  const othersBefore = othersCpu(sims, natsPid);
  const began = performance.now();
  const id = await admin.createRelease(APP, {
    edition: TO_EDITION, group: 'all', strategy: 'rolling', batches: String(o.batches), batchMode: 'auto', wait: '0s', drain: '1s', updateOrder: o.updateOrder,
  });
  line.createMs = elapsed(began);
  log(`${agents} agents: release ${id} created; waiting up to ${o.releaseTimeoutS} s`);
  const samples = sample(admin, id, () => watch.ended !== undefined || performance.now() - began > o.releaseTimeoutS * 1000);
  const ended = await waitFor('the release to end', () => watch.ended, o.releaseTimeoutS * 1000).catch(() => undefined);
  const wallMs = elapsed(began);
  const after = processUsage(pid);
  const counters = await sims.counters();
  line.status = ended?.status ?? 'timeout';
  if (ended?.message) line.message = ended.message;
  line.releaseMs = ended && watch.created ? ended.at - watch.created.at : wallMs;
  line.cpuSeconds = round1(after.cpuSeconds - usage.cpuSeconds);
  const othersAfter = othersCpu(sims, natsPid);
  line.simCpuSeconds = round1(othersAfter.sims - othersBefore.sims);
  line.natsCpuSeconds = round1(othersAfter.nats - othersBefore.nats);
  line.peakRssMb = round1(after.peakRssMb);
  Object.assign(line, dropped(before, counters));
  const { show, list } = await samples;
  line.releaseShowMs = median(answered(show));
  line.releaseShowSamples = show.map((s) => (s.value ? s.ms : `failed after ${s.ms} ms: ${s.error}`));
  line.agentListDuringMs = median(answered(list));
  await stepFigures(ended !== undefined, id, line.releaseMs as number, counters.results - before.results, admin, line);
  await timingFigures(sims, watch, line);
}

/** Steps per second: finished steps of the release record (drain included), or the simulators' results when it did not end. */
async function stepFigures(ended: boolean, id: string, releaseMs: number, results: number, admin: ScaleAdmin, line: ScaleLine): Promise<void> {
  const detail = ended ? await admin.getRelease(id, 120_000) : undefined;
  const steps = detail?.value ? detail.value.instances.reduce((n, i) => n + i.steps.filter((s) => Number(s.finishedUnixMs) > 0).length, 0) : undefined;
  line.steps = steps ?? results;
  line.stepsSource = steps === undefined ? 'simulator results' : 'release record';
  line.stepsPerSec = releaseMs > 0 ? round1(((steps ?? results) * 1000) / releaseMs) : null;
}

/** Overhead per batch and step turnaround, from the simulators' clocks (definitions in scale-figures.ts). */
async function timingFigures(sims: SimFleet, watch: ReleaseWatch, line: ScaleLine): Promise<void> {
  const timings = await sims.timings();
  const byAgent = new Map<string, AgentTiming>(timings.agents.map(([id, firstCommandAt, lastResultAt]) => [id, { firstCommandAt, lastResultAt }]));
  const batches = watch.created?.batches ?? [];
  const gaps = batchGaps(batches, byAgent);
  line.overheadPerBatchP50Ms = round1(percentile(gaps, 50));
  line.overheadPerBatchP99Ms = round1(percentile(gaps, 99));
  line.batchGaps = gaps.length;
  line.batchDispatchP50Ms = round1(median(batchSpreads(batches, byAgent)));
  line.stepTurnaroundP50Ms = round1(percentile(timings.turnaroundsMs, 50));
  line.stepTurnaroundP99Ms = round1(percentile(timings.turnaroundsMs, 99));
}

/**
 * A rack goes silent (one simulator process frozen: its streams stay open, its heartbeats stop): how long until the
 * controller lists every one of its agents unreachable. Target: within the heartbeat timeout (the controller's default,
 * 15 s), however many agents stay connected meanwhile.
 */
async function rackPhase(sims: SimFleet, admin: ScaleAdmin, line: ScaleLine, log: (line: string) => void): Promise<void> {
  const before = (await admin.agentsWithStatus('unreachable')).value ?? 0;
  const count = sims.freeze(0);
  const began = performance.now();
  log(`${count} agents of one simulator silent (SIGSTOP); waiting for the controller to mark them unreachable`);
  line.rackAgents = count;
  line.heartbeatTimeoutMs = HEARTBEAT_TIMEOUT_MS;
  try {
    await waitFor(`${count} agents to be marked unreachable`, async () => ((await admin.agentsWithStatus('unreachable', 5_000)).value ?? 0) >= before + count, RACK_DEADLINE_MS);
    line.rackLostMs = elapsed(began);
  } catch {
    line.rackLostMs = null;
    line.rackMessage = `not all ${count} marked unreachable within ${RACK_DEADLINE_MS / 1000} s`;
  } finally {
    sims.thaw(0);
  }
}

/** CPU seconds so far of the simulator processes and of nats-server, which share the cores with the controller. */
function othersCpu(sims: SimFleet, natsPid: number): { sims: number; nats: number } {
  const cpu = (pid: number) => {
    try {
      return processUsage(pid).cpuSeconds;
    } catch {
      return 0;
    }
  };
  return { sims: sims.pids.reduce((sum, pid) => sum + cpu(pid), 0), nats: natsPid ? cpu(natsPid) : 0 };
}

function dropped(before: SimCounters, after: SimCounters) {
  return {
    streamsDropped: after.streamsDropped - before.streamsDropped,
    reconnects: after.reconnects - before.reconnects,
    welcomeTimeouts: after.welcomeTimeouts - before.welcomeTimeouts,
    replays: after.replays - before.replays,
    connectedAtEnd: after.connected,
  };
}

/** `release show` and `agent list --limit 100` while the release runs, one after the other, a few times. */
async function sample(admin: ScaleAdmin, id: string, done: () => boolean) {
  const show: Timed<unknown>[] = [];
  const list: Timed<unknown>[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    await sleep(i === 0 ? FIRST_SAMPLE_MS : SAMPLE_EVERY_MS);
    if (done()) break;
    show.push(await admin.getReleasePage(id, 30_000));
    list.push(await admin.listAgentsPage(30_000));
  }
  return { show, list };
}

function answered(calls: Timed<unknown>[]): number[] {
  return calls.filter((c) => c.value !== undefined).map((c) => c.ms);
}
