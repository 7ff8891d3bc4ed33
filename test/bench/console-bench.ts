// `make bench-console`: the web console (controller/console/) against a fleet at scale, in headless Chromium. Prints one
// line per figure on stdout, then the same as one JSON line; progress on stderr. Flags: CONSOLE_USAGE below.
//
//   nats ─▶ controller (--insecure) ─▶ app + edition 2.0 ─▶ N simulated agents (running 1.0) all connected
//     ─▶ `/` loaded fresh `loads` times (paint, Fleet counts shown, bytes)
//     ─▶ release of 2.0 to all N (rolling, auto, 1 s drain; each agent answers after --delay-ms so it runs a while):
//        one page on the release, one on the Fleet view, watched for --live-s (refetches/s, events/s, JS heap, long tasks)
//     ─▶ release ended ─▶ its page loaded fresh `loads` times (batches shown) ─▶ stop everything
//
// Every child is stopped at the end; Ctrl-C, SIGTERM or an error stops them too (scale-stack.ts's killAllNow).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Browser } from 'playwright-core';
import { waitFor } from '../harness/fleet.js';
import { browserCpuSeconds, CHROMIUM, launchBrowser, LiveView, loadMedians, timedLoad, type LiveFigures } from './console-page.js';
import { ScaleAdmin } from './scale-admin.js';
import { round1 } from './stats.js';
import { installApp, killAllNow, runDir, SimFleet, startScaleController, startStackNats, stopStack, type ScaleController } from './scale-stack.js';
import { ReleaseWatch } from './scale-watch.js';

const APP = 'shop';
const FLEET_READY = '.groups .count';
const RELEASE_READY = '.timeline .batch';
/** Longest wait for one view to show its data (a loaded 2-core machine at 10,000 agents). */
const VIEW_TIMEOUT_MS = 60_000;

export const CONSOLE_USAGE =
  'usage: console-bench [--agents 10000] [--loads 5] [--delay-ms 200] [--live-s 20] [--batches 10] ' +
  '[--release-timeout-s 600] [--connect-timeout-s 180] [--sims 4] [--keep]';

interface ConsoleBenchOptions {
  agents: number;
  /** Fresh page loads per view; the figures are their medians. */
  loads: number;
  /** Each simulated agent answers every command this long after it arrived (so the release runs long enough to watch). */
  delayMs: number;
  /** How long the pages are watched while the release runs (less if it ends first). */
  liveS: number;
  batches: number;
  releaseTimeoutS: number;
  connectTimeoutS: number;
  sims: number;
  keep: boolean;
}

function parseOptions(argv: string[]): ConsoleBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '10000' },
      loads: { type: 'string', default: '5' },
      'delay-ms': { type: 'string', default: '200' },
      'live-s': { type: 'string', default: '20' },
      batches: { type: 'string', default: '10' },
      'release-timeout-s': { type: 'string', default: '600' },
      'connect-timeout-s': { type: 'string', default: '180' },
      sims: { type: 'string', default: '4' },
      keep: { type: 'boolean', default: false },
    },
  });
  const n = (flag: keyof typeof values, min: number) => {
    const text = String(values[flag]).trim();
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min) throw new Error(`--${flag}: '${text}' is not a whole number of at least ${min}`);
    return value;
  };
  return {
    agents: n('agents', 1), loads: n('loads', 1), delayMs: n('delay-ms', 0), liveS: n('live-s', 1), batches: n('batches', 1),
    releaseTimeoutS: n('release-timeout-s', 1), connectTimeoutS: n('connect-timeout-s', 1), sims: n('sims', 1), keep: values.keep,
  };
}

const log = (text: string) => process.stderr.write(`console-bench: ${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One answer of the console's own JSON API (the insecure controller needs no credential). */
async function api<T>(httpUrl: string, method: string, body: object): Promise<T> {
  const res = await fetch(`${httpUrl}/api/v1/rpc/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

async function run(o: ConsoleBenchOptions, line: Record<string, unknown>): Promise<void> {
  const { dir, forget } = runDir();
  let controller: ScaleController | undefined;
  let sims: SimFleet | undefined;
  let admin: ScaleAdmin | undefined;
  let watch: ReleaseWatch | undefined;
  let browser: Browser | undefined;
  let nats;
  try {
    nats = await startStackNats(dir);
    controller = await startScaleController(dir, nats.url);
    admin = new ScaleAdmin(controller.grpcAddress);
    await installApp(dir, controller.grpcAddress, APP, '2.0');
    watch = await ReleaseWatch.start(nats.url, APP);
    sims = await SimFleet.start({ controller: controller.grpcAddress, natsUrl: nats.url, app: APP, group: 'bench', idPrefix: 'sim-', sessionsPerChannel: 250, delayMs: o.delayMs, edition: '1.0' }, o.agents, Math.min(o.sims, o.agents));
    sims.connect();
    const http = controller.httpUrl;
    await waitFor(`${o.agents} instances known to the controller`, async () => {
      const answer = await api<{ summary?: { total?: number } }>(http, 'listInstances', { app: APP, query: { limit: 1 } });
      return (answer.summary?.total ?? 0) >= o.agents || (await sleep(250), false);
    }, o.connectTimeoutS * 1000);
    log(`${o.agents} agents connected; console at ${http}/`);

    browser = await launchBrowser();
    await pageLoads(browser, o, `${http}/`, FLEET_READY, 'fleet', () => document.querySelector('.groups .group button')?.textContent ?? '', line);

    const id = await admin.createRelease(APP, { edition: '2.0', group: 'all', strategy: 'rolling', batches: String(o.batches), batchMode: 'auto', wait: '0s', drain: '1s', updateOrder: 'stop-first' });
    line.release = id;
    log(`release ${id} created; watching the release page and the Fleet view for up to ${o.liveS} s`);
    await livePhase(browser, o, http, id, watch, line);

    const ended = await waitFor('the release to end', () => watch!.ended, o.releaseTimeoutS * 1000).catch(() => undefined);
    line.releaseStatus = ended?.status ?? 'still running (timeout)';
    line.releaseMs = ended && watch.created ? ended.at - watch.created.at : null;
    log(`release ${line.releaseStatus}; loading its page`);
    await pageLoads(browser, o, `${http}/#/releases/${encodeURIComponent(id)}`, RELEASE_READY, 'release', () => `${document.querySelectorAll('.timeline .batch').length} batches, ${document.querySelectorAll('table.instances tbody tr').length} instance rows`, line);
  } catch (err) {
    line.status = `error: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    await browser?.close().catch(() => {});
    await stopStack({ admin, watch, sims, controller, nats }, { dir, forget }, o.keep, line);
  }
}

/** `loads` fresh loads of `url`; their medians go in the line under `prefix`. */
async function pageLoads(browser: Browser, o: ConsoleBenchOptions, url: string, selector: string, prefix: string, describe: () => string, line: Record<string, unknown>): Promise<void> {
  const loads = [];
  for (let i = 0; i < o.loads; i++) loads.push(await timedLoad(browser, url, selector, describe, VIEW_TIMEOUT_MS));
  const m = loadMedians(loads);
  Object.assign(line, { [`${prefix}FcpMs`]: m.fcpMs, [`${prefix}ReadyMs`]: m.readyMs, [`${prefix}ReadySamplesMs`]: m.samplesMs, [`${prefix}Bytes`]: m.bytes, [`${prefix}Requests`]: m.requests, [`${prefix}Shown`]: m.shown });
}

/** The release page and the Fleet view, each in its own fresh context, watched while the release runs. */
async function livePhase(browser: Browser, o: ConsoleBenchOptions, http: string, id: string, watch: ReleaseWatch, line: Record<string, unknown>): Promise<void> {
  const views: [string, LiveView][] = [];
  try {
    views.push(['liveRelease', await LiveView.open(browser, `${http}/#/releases/${encodeURIComponent(id)}`, RELEASE_READY, 'getRelease', VIEW_TIMEOUT_MS)]);
    views.push(['liveFleet', await LiveView.open(browser, `${http}/`, FLEET_READY, 'listApps', VIEW_TIMEOUT_MS)]);
    for (const [, v] of views) await v.start();
    const cpuBefore = browserCpuSeconds();
    const began = performance.now();
    while (performance.now() - began < o.liveS * 1000 && !watch.ended) await sleep(250);
    const seconds = (performance.now() - began) / 1000;
    line.liveBrowserCpuPct = round1(((browserCpuSeconds() - cpuBefore) / seconds) * 100);
    line.liveReleaseEndedInWindow = watch.ended !== undefined;
    for (const [name, v] of views) {
      const f: LiveFigures = await v.figures(VIEW_TIMEOUT_MS);
      for (const [key, value] of Object.entries(f)) line[`${name}${key[0]!.toUpperCase()}${key.slice(1)}`] = value;
    }
  } finally {
    for (const [, v] of views) await v.close();
  }
}

/** The figures as lines a person reads: name, value, what it is. */
const FIGURES: [string, string][] = [
  ['fleetFcpMs', 'ms  first contentful paint of / (median of fresh loads)'],
  ['fleetReadyMs', 'ms  until the Fleet view shows the group counts'],
  ['fleetBytes', 'B   transferred until then (document, script, style, API answers)'],
  ['releaseFcpMs', 'ms  first contentful paint of the release page'],
  ['releaseReadyMs', 'ms  until the release page shows its batches'],
  ['releaseBytes', 'B   transferred until then'],
  ['liveReleaseRefetchPerSec', '/s  release page refetches (getRelease) during the release'],
  ['liveReleaseRpcPerSec', '/s  release page API requests, all methods'],
  ['liveReleaseRpcMedianMs', 'ms  release page API request, median'],
  ['liveReleaseEventsPerSec', '/s  events the release page received'],
  ['liveReleaseHeapMaxMb', 'MB  release page JS heap, largest sample'],
  ['liveReleaseHeapAfterGcMb', 'MB  release page JS heap after a forced GC at the end'],
  ['liveReleaseLongTaskPct', '%   release page main thread in tasks over 50 ms'],
  ['liveReleaseTimerLagMaxMs', 'ms  release page: a 100 ms timer fired this late at worst'],
  ['liveFleetRefetchPerSec', '/s  Fleet view refetches (listApps) during the release'],
  ['liveFleetRpcPerSec', '/s  Fleet view API requests, all methods'],
  ['liveFleetRpcMedianMs', 'ms  Fleet view API request, median'],
  ['liveFleetHeapMaxMb', 'MB  Fleet view JS heap, largest sample'],
  ['liveFleetLongTaskPct', '%   Fleet view main thread in tasks over 50 ms'],
  ['liveFleetTimerLagMaxMs', 'ms  Fleet view: a 100 ms timer fired this late at worst'],
  ['liveBrowserCpuPct', '%   CPU of all Chromium processes (both pages), of one core'],
];

if (!existsSync(CHROMIUM)) {
  log(`no ${CHROMIUM} (apt-get install chromium)`);
  process.exit(2);
}
let options: ConsoleBenchOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  log(`${(err as Error).message.split('\n')[0]}; ${CONSOLE_USAGE}`);
  process.exit(2);
}
process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}; stopping the controller, nats-server and the simulators`);
    killAllNow();
    process.exit(130);
  });
}

const line: Record<string, unknown> = { agents: options.agents, loads: options.loads, delayMs: options.delayMs, batches: options.batches };
await run(options, line);
console.log(`agents ${options.agents}${line.status ? ` — ${String(line.status)}` : ''}`);
for (const [key, text] of FIGURES) console.log(`${key.padEnd(26)} ${String(line[key] ?? '-').padStart(8)} ${text}`);
console.log(JSON.stringify(line));
if (line.status) process.exitCode = 1;
