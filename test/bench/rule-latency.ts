// How long a routing rule takes to reach every router: a controller, two agents (blue on 2.0, green on 1.0, the
// default), two `fleetwave router` processes each beside its own haproxy; `route add` then each frontend polled
// (every 5 ms, a fresh connection) until a request with the rule's header gets 2.0; then `route remove` and the same
// until it gets 1.0 again. Prints one JSON line: medians and maxima over the rounds, per router and over both.
//
//   node dist/test/bench/rule-latency.js [--rounds 10]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath } from '../harness/fleet.js';
import { get, startRouter, stopRouter, type RouterProc } from '../harness/router.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);
const APP = 'shop';
const HEADER = { 'X-Beta': '1' };

const dir = mkdtempSync(join(tmpdir(), 'fleetwave-rule-latency-'));
const fleet = new Fleet(dir);
const routers: Array<{ proc: RouterProc; dir: string; port: number }> = [];

async function cli(args: string[]): Promise<string> {
  const result = await fleet.cli(args);
  if (result.code !== 0) throw new Error(`fleetwave ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** Milliseconds from `began` until every router's frontend answers `edition` to the header. */
async function untilAll(began: number, edition: string): Promise<number[]> {
  return Promise.all(
    routers.map(async (r) => {
      for (;;) {
        const answer = await get(r.port, '/', HEADER).catch(() => undefined);
        if (answer?.edition === edition) return performance.now() - began;
        if (performance.now() - began > 30_000) throw new Error(`router on ${r.port} never answered ${edition}`);
        await new Promise((res) => setTimeout(res, 5));
      }
    }),
  );
}

try {
  await fleet.startNats();
  await fleet.startController();
  await fleet.startAgent('a1', 'blue', { [APP]: await freePort() });
  await fleet.startAgent('a2', 'green', { [APP]: await freePort() });
  await fleet.adminClient.waitForAgents(['a1', 'a2']);
  await cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=100']);
  for (const edition of ['1.0', '2.0']) {
    const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
    await cli(['edition', 'install', APP, edition, '--file', pkg.path]);
  }
  for (const [edition, group] of [['1.0', 'all'], ['2.0', 'blue']] as const) {
    const id = (await cli(['release', 'create', APP, '--edition', edition, '--group', group, '--batches', '1'])).split('\n')[0]!;
    await fleet.adminClient.waitForRelease(id, ['Released'], 60_000);
  }
  for (const name of ['r1', 'r2']) {
    const runDir = join(dir, name);
    const port = await freePort();
    const proc = await startRouter({ runDir, apps: { [APP]: port }, controller: fleet.controller!.grpcAddress, natsUrl: fleet.nats!.url, id: name, logFile: join(runDir + '.log') });
    routers.push({ proc, dir: runDir, port });
  }
  await untilAll(performance.now(), '1.0');
  const add: number[] = [];
  const remove: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let began = performance.now();
    const id = (await cli(['route', 'add', APP, '--edition', '2.0', '--header', 'X-Beta=1'])).split(/\s+/)[0]!;
    add.push(...(await untilAll(began, '2.0')));
    began = performance.now();
    await cli(['route', 'remove', APP, id]);
    remove.push(...(await untilAll(began, '1.0')));
  }
  const round2 = (n: number | null) => Math.round(n ?? 0);
  // The times include the CLI's own start (a Node process, about 150 ms here): what an operator waits.
  console.log(JSON.stringify({
    scenario: 'rule-latency',
    routers: routers.length,
    rounds,
    addP50Ms: round2(median(add)),
    addMaxMs: round2(Math.max(...add)),
    removeP50Ms: round2(median(remove)),
    removeMaxMs: round2(Math.max(...remove)),
  }));
} finally {
  for (const r of routers) {
    await stopRouter(r.proc, r.dir);
  }
  await fleet.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
