// `make demo`: a phased, interruption-free release on one machine. Starts
// nats-server, a controller and 6 agents (groups blue and green) on loopback,
// deploys edition 1.0 of the sample app `shop`, starts the edition router (haproxy
// programmed live by `fleetwave router`), puts 48 clients on it and releases 2.0 in
// phases while recording which edition answered each request. Exits 0 only if the
// release is Released, all 6 instances run 2.0 and no request failed.
// `--keep` (make demo --keep): after the result, everything stays up (the web console to look around in) until Ctrl-C.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readGateStats } from '../../agent/data-path.js';
import type { HoldFigures } from '../../agent/hold-stats.js';
import { CLI_MAIN, Fleet, REPO_ROOT, freePort, waitFor } from '../../test/harness/fleet.js';
import { HAS_HAPROXY, startRouter, stopRouter, type RouterProc } from '../../test/harness/router.js';
import { LoadGenerator, type LoadSummary, type RecordedRequest } from './load.js';
import { buildEdition } from './package.js';

const DEMO_DIR = join(REPO_ROOT, '.demo');
const LOG_DIR = join(DEMO_DIR, 'logs');
const APP = 'shop';
const GROUPS = ['blue', 'green'] as const;
const PER_GROUP = 3;
const WATCH_TIMEOUT_MS = 180_000;
const ROUTER_DIR = join(DEMO_DIR, 'router');

/** A demo step that went wrong, said in one line. */
class DemoError extends Error {}

/** Ctrl-C was pressed: the demo is stopping, its steps' errors are no news. */
let interrupted = false;

/** --keep: keep the fleet up after the result until Ctrl-C. */
const KEEP = process.argv.includes('--keep');
/** Set while --keep holds the fleet up: Ctrl-C then ends the wait and main stops everything as usual. */
let endKeep: (() => void) | undefined;

function say(text: string): void {
  console.log(`\n==> ${text}`);
}

async function main(): Promise<number> {
  rmSync(DEMO_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });
  const fleet = new Fleet(DEMO_DIR, LOG_DIR);
  let router: RouterProc | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () => (stopping ??= (async () => {
    await stopRouter(router, ROUTER_DIR);
    await fleet.stopAll();
  })());
  process.once('SIGINT', () => {
    if (endKeep) {
      console.error('\nCtrl-C: stopping every process the demo started');
      return endKeep();
    }
    interrupted = true;
    console.error('\ninterrupted: stopping every process the demo started');
    void settle(fleet, 5_000)
      .then(stopAll)
      .finally(() => process.exit(130));
  });
  try {
    const ports = await startFleet(fleet);
    await defineShop(fleet);
    await deployFirstEdition(fleet, ports);
    const front = await startTheRouter(fleet);
    router = front.router;
    const code = await releaseUnderLoad(fleet, ports, front.url);
    if (KEEP) await keepUp(fleet, front.url, code);
    return code;
  } catch (err) {
    if (interrupted) return 130;
    console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
    console.error(`daemon logs: ${LOG_DIR}`);
    return 1;
  } finally {
    say('stopping the router and its haproxy, nats-server, the controller and the agents');
    await stopAll();
  }
}

/** --keep: everything stays up with the console's URL until Ctrl-C (whose handler resolves the wait). */
async function keepUp(fleet: Fleet, routerUrl: string, code: number): Promise<void> {
  say(`the fleet stays up (--keep; the demo's result: ${code === 0 ? 'PASS' : 'FAIL'})`);
  console.log(`web console: ${fleet.controller!.httpUrl}/`);
  console.log(`the app through the router: ${routerUrl}`);
  console.log(`the CLI: node ${CLI_MAIN} --controller ${fleet.controller!.grpcAddress} release list`);
  console.log('press Ctrl-C to stop every process the demo started');
  await new Promise<void>((resolve) => (endKeep = resolve));
  // Ctrl-C reached the daemons too: let them stop on their own first (see settle).
  await settle(fleet, 5_000);
}

/**
 * Ctrl-C reaches the daemons too (same process group): give them a moment to stop
 * on their own (agents stop their apps) before SIGTERM, which they would take as
 * a second, impatient signal.
 */
async function settle(fleet: Fleet, ms: number): Promise<void> {
  const procs = [...fleet.agents.map((a) => a.proc), fleet.controller?.proc, fleet.nats?.proc].filter((p) => p !== undefined);
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, ms))]);
}

/** nats-server, the controller and 6 agents; resolves to each agent's service port for shop. */
async function startFleet(fleet: Fleet): Promise<Record<string, number>> {
  say(`starting nats-server (JetStream), a controller and ${GROUPS.length * PER_GROUP} agents; daemon logs in ${LOG_DIR}`);
  const nats = await fleet.startNats();
  const controller = await fleet.startController();
  console.log(`nats-server ${nats.url}, controller gRPC ${controller.grpcAddress}, HTTP ${controller.httpUrl}`);
  console.log(`web console: ${controller.httpUrl}/ (open it in a browser to follow the release live; the demo's controller runs --insecure: no sign-in)`);
  const ports: Record<string, number> = {};
  for (const group of GROUPS) {
    for (let n = 1; n <= PER_GROUP; n++) {
      const id = `${group}-${n}`;
      ports[id] = await freePort();
      await fleet.startAgent(id, group, { [APP]: ports[id] });
    }
  }
  await fleet.adminClient.waitForAgents(Object.keys(ports), 30_000);
  console.log(await cli(fleet, ['agent', 'list']));
  return ports;
}

/** The app and its two editions, packaged from examples/app. */
async function defineShop(fleet: Fleet): Promise<void> {
  say(`defining app ${APP} and installing editions 1.0 and 2.0`);
  await cli(fleet, ['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=500', '--health-path', '/healthz', '--stop-timeout', '10s'], true);
  for (const edition of ['1.0', '2.0']) {
    const pkg = await buildEdition({ sourceDir: join(REPO_ROOT, 'examples', 'app'), edition, outDir: join(DEMO_DIR, 'packages'), name: APP });
    await cli(fleet, ['edition', 'install', APP, edition, '--file', pkg.path, '--description', `shop ${edition} (demo)`], true);
  }
  console.log(await cli(fleet, ['edition', 'list', APP]));
}

/** Edition 1.0 everywhere, one batch per group; waits until every service port answers 1.0. */
async function deployFirstEdition(fleet: Fleet, ports: Record<string, number>): Promise<void> {
  say('deploying 1.0 to every instance (one batch per group)');
  const { id, code } = await releaseAndWatch(fleet, ['--edition', '1.0', '--group', 'all', '--batches', '1', '--batch-mode', 'auto']);
  if (code !== 0) throw new DemoError(`the deploy of 1.0 did not end Released (release ${id}; see fleetwave release show ${id})`);
  for (const [id, port] of Object.entries(ports)) {
    await waitFor(`${id} to serve 1.0 on port ${port}`, async () => (await editionAt(port)) === '1.0', 30_000);
  }
}

/**
 * `fleetwave router` fronting shop: it starts haproxy with a generated config and programs it live from the
 * controller's routing watch and the instances' NATS events. Resolves once haproxy serves 1.0 through it.
 */
async function startTheRouter(fleet: Fleet): Promise<{ router: RouterProc; url: string }> {
  if (!HAS_HAPROXY) throw new DemoError('haproxy is not installed (make setup installs it from Debian)');
  const port = await freePort();
  say(`starting the edition router: haproxy on 127.0.0.1:${port}, programmed through its Runtime API (run dir ${ROUTER_DIR})`);
  const router = await startRouter({
    runDir: ROUTER_DIR,
    apps: { [APP]: port },
    controller: fleet.controller!.grpcAddress,
    natsUrl: fleet.nats!.url,
    id: 'demo-router',
    logFile: join(LOG_DIR, 'router.log'),
    args: ['--log-format', 'pretty', '--log-level', 'info'],
  });
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('haproxy to serve 1.0 through the router', async () => (await editionAt(port)) === '1.0', 30_000);
  console.log(`router: ${url} (fleetwave router, log ${join(LOG_DIR, 'router.log')})`);
  return { router, url };
}

/** The phased release of 2.0 under load through the router; resolves to the demo's exit code. */
async function releaseUnderLoad(fleet: Fleet, ports: Record<string, number>, url: string): Promise<number> {
  const targets = [url];
  say(`load: 48 clients through the router (${url}), back to back; each request's edition is recorded`);
  const load = new LoadGenerator({ urls: targets, concurrency: 48, record: true });
  load.start();
  let summary: LoadSummary | undefined;
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    // The gates' held-time figures count from here: the deploy of 1.0 held requests for apps not yet started.
    await Promise.all(fleet.agents.map((a) => readGateStats(a.dataDir, true)));
    say('phased release of 2.0: 2 batches per group, automatic, 1s between batches, soft reset (start-first: the new edition starts beside the old one, the gate switches once it is healthy)');
    const { id, code } = await releaseAndWatch(fleet, ['--edition', '2.0', '--batches', '2', '--batch-mode', 'auto', '--wait', '1s', '--reset', 'soft', '--drain', '5s']);
    if (interrupted) throw new DemoError('interrupted');
    // A little more load on 2.0 alone, then the counts.
    await new Promise((r) => setTimeout(r, 1_000));
    summary = await load.stop();
    printEditionTimeline(load.requests());
    return await report(fleet, id, code, summary, ports);
  } finally {
    if (!summary) await load.stop();
  }
}

/** Which edition answered, second by second: the switch from 1.0 to 2.0 as the clients saw it through the router. */
function printEditionTimeline(requests: readonly RecordedRequest[]): void {
  if (requests.length === 0) return;
  say('which edition answered each request, per second of the release (through the router)');
  const start = Math.min(...requests.map((r) => r.startMs));
  const seconds = new Map<number, Record<string, number>>();
  for (const r of requests) {
    const second = Math.floor((r.endMs - start) / 1000);
    const counts = seconds.get(second) ?? {};
    const key = r.ok ? r.edition : 'failed';
    counts[key] = (counts[key] ?? 0) + 1;
    seconds.set(second, counts);
  }
  for (const [second, counts] of [...seconds].sort((a, b) => a[0] - b[0])) {
    const cells = Object.entries(counts).sort().map(([edition, n]) => `${edition}: ${String(n).padStart(5)}`);
    console.log(`  t+${String(second).padStart(2)}s  ${cells.join('   ')}`);
  }
}

async function report(fleet: Fleet, id: string, watchCode: number, load: LoadSummary, ports: Record<string, number>): Promise<number> {
  say('result');
  const release = await fleet.adminClient.release(id);
  const status = release.release?.status ?? 'unknown';
  console.log(`release ${id}: ${status}`);
  console.log(await cli(fleet, ['instance', 'list', APP]));
  const editions = Object.entries(load.byEdition).map(([e, n]) => `${e}: ${n}`).join(', ');
  console.log(`requests: ${load.total} in ${(load.durationMs / 1000).toFixed(1)}s (${load.requestsPerSecond}/s): ${load.ok} ok, ${load.failed} failed`);
  console.log(`answered by edition: ${editions || 'none'}`);
  console.log(`latency ms: p50 ${load.latencyMs.p50}, p90 ${load.latencyMs.p90}, p99 ${load.latencyMs.p99}, max ${load.latencyMs.max}`);
  const held = await heldFigures(fleet);
  console.log(
    `held by the gates: ${held.held} requests${held.held ? ` (p50 ${held.p50Ms} ms, p99 ${held.p99Ms} ms, max ${held.maxMs} ms)` : ''}, ${held.gaveUp} answered 503 after holding`,
  );
  if (load.failed) console.log(`failures: ${JSON.stringify(load.failures)} by target ${JSON.stringify(load.failedByTarget)}`);

  const instances = await fleet.adminClient.instances(APP);
  const on2 = instances.filter((i) => i.edition === '2.0').length;
  const served2 = (await Promise.all(Object.values(ports).map(editionAt))).filter((e) => e === '2.0').length;
  const checks: Array<[boolean, string]> = [
    [status === 'Released' && watchCode === 0, `release ${status}`],
    [on2 === Object.keys(ports).length && served2 === on2, `${on2} of ${Object.keys(ports).length} instances run 2.0 (${served2} answer 2.0)`],
    [load.failed === 0 && load.ok > 0, `${load.failed} of ${load.total} requests failed`],
  ];
  // The controller stops with the demo: keep the release's timeline for reading afterwards.
  const timeline = join(DEMO_DIR, `release-${id}.txt`);
  writeFileSync(timeline, `${await cli(fleet, ['release', 'show', id])}\n`);
  for (const [ok, what] of checks) console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}`);
  console.log(`release timeline (fleetwave release show): ${timeline}`);
  console.log(`daemon logs: ${LOG_DIR}`);
  return checks.every(([ok]) => ok) ? 0 : 1;
}

/** The release's held-time figures over every gate: counts summed, the worst percentiles (gates keep samples apart). */
async function heldFigures(fleet: Fleet): Promise<HoldFigures> {
  const all = (await Promise.all(fleet.agents.map((a) => readGateStats(a.dataDir)))).flatMap((byApp) => Object.values(byApp));
  return all.reduce(
    (sum, f) => ({ held: sum.held + f.held, gaveUp: sum.gaveUp + f.gaveUp, p50Ms: Math.max(sum.p50Ms, f.p50Ms), p99Ms: Math.max(sum.p99Ms, f.p99Ms), maxMs: Math.max(sum.maxMs, f.maxMs) }),
    { held: 0, gaveUp: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 },
  );
}

/** Runs a CLI verb; its stdout, or a DemoError with its stderr. `echo` prints the command first. */
async function cli(fleet: Fleet, args: string[], echo = false): Promise<string> {
  if (echo) console.log(`$ fleetwave ${args.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ')}`);
  const result = await fleet.cli(args);
  if (result.code !== 0) throw new DemoError(`fleetwave ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.code}`}`);
  if (echo && result.stdout.trim()) console.log(result.stdout.trim());
  return result.stdout.trimEnd();
}

/**
 * `fleetwave release create APP ... --watch`: one CLI process creates the release
 * and follows it (a second process would start late on a loaded machine). Its
 * output is passed through; its first line is the release id.
 */
function releaseAndWatch(fleet: Fleet, flags: string[]): Promise<{ id: string; code: number }> {
  const args = ['release', 'create', APP, ...flags, '--watch'];
  console.log(`$ fleetwave ${args.join(' ')}`);
  const child = spawn(process.execPath, [CLI_MAIN, '--controller', fleet.controller!.grpcAddress, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let id = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!id) id = line.trim();
    console.log(line);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      console.error(`the release did not end within ${WATCH_TIMEOUT_MS / 1000}s`);
      child.kill('SIGTERM');
    }, WATCH_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!id) reject(new DemoError(`fleetwave ${args.join(' ')} printed no release id (exit ${code})`));
      // Let the line reader hand over the last lines before the caller prints more.
      else setImmediate(() => resolve({ id, code: code ?? 1 }));
    });
  });
}

/** The edition that answers on a service port, or undefined. */
function editionAt(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(body) as { edition?: string }).edition : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

process.exitCode = await main();
