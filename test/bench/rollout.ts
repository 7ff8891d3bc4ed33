// `make bench`: prints one JSON line per scenario on stdout (medians over --runs, failures summed); each run's line goes to stderr.
//
//   gate           one instance, direct vs through the traffic gate: requests/s and p50 latency
//   router         one instance, direct vs through haproxy as fleetwave router programs it: requests/s, p50/p99
//   rolling-soft   12 agents, 3 batches per group, soft reset (start-first)  ┐
//   rolling-soft-stop-first  the same, stop-first (quiesce, drain, restart)  │
//   rolling-hard   12 agents, 3 batches per group, hard reset  ├ a release under steady load through the gates
//   grouped-soft   12 agents, group size 1, soft reset         ┘
//   router-*       the 12 agents behind fleetwave router (haproxy), the whole load through its frontend: rolling
//                  stop-first and start-first, and atomic (with oldAfterFirstNew: requests that started after the
//                  first new answer yet got the old edition, 0 when the switch is atomic)
//   plain-restart  12 bare app processes restarted one by one (stop, start) under the same load, no gate
//   jvm-*          8 agents serving a JVM app (jvm-bench.ts), clients that give up after 2 s: stop-first soft and
//                  hard, start-first soft, and an agent kill -9 mid-restart; skipped without a JDK
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchGate, gateSummary } from './gate-bench.js';
import { benchRouter, routerSummary, type RouterFigures } from './router-bench.js';
import { haveJdk } from './jvm-package.js';
import { JVM_SCENARIOS, JvmFleet } from './jvm-bench.js';
import { benchPlainRestart } from './plain-restart.js';
import { BenchFleet, ROUTER_SCENARIOS, SCENARIOS } from './release-bench.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    instances: { type: 'string', default: '12' },
    // Clients per instance, each with one request in flight, for the whole release.
    concurrency: { type: 'string', default: '2' },
    // Time each request spends in the app (GET /slow?ms=N), as an app waiting on its database would; 0: GET /.
    'app-ms': { type: 'string', default: '10' },
    only: { type: 'string' },
    'jvm-instances': { type: 'string', default: '8' },
  },
});
const runs = Number(values.runs);
const instances = Number(values.instances);
const concurrency = Number(values.concurrency);
const appMs = Number(values['app-ms']);
const load = { concurrency: instances * concurrency, appMs };
const wanted = (name: string): boolean => !values.only || values.only.split(',').includes(name);

type Line = Record<string, unknown>;
/** Failure counts: summed over the runs, since one lost request is one too many. */
const SUMMED = new Set(['failed', 'clientTimeouts', 'retryAfter503', 'refused', 'oldAfterFirstNew']);

const results = new Map<string, Line[]>();
const record = (line: Line): void => {
  process.stderr.write(`run: ${JSON.stringify(line)}\n`);
  const name = String(line.scenario);
  results.set(name, [...(results.get(name) ?? []), line]);
};

const dir = mkdtempSync(join(tmpdir(), 'fleetwave-bench-'));
let fleet: BenchFleet | undefined;
let jvmFleet: JvmFleet | undefined;
const cleanUp = async (): Promise<void> => {
  await fleet?.stop();
  await jvmFleet?.stop();
  if (!process.env.FLEETWAVE_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

try {
  for (let run = 0; run < runs; run++) {
    if (wanted('gate')) record({ ...(await benchGate()) });
    if (wanted('router')) record({ ...(await benchRouter()) });
  }
  if (SCENARIOS.some((s) => wanted(s.name))) {
    fleet = await BenchFleet.start(dir, { instances, concurrency, appMs });
    for (let run = 0; run < runs; run++) {
      for (const scenario of SCENARIOS.filter((s) => wanted(s.name))) record({ ...(await fleet.run(scenario)), ...load });
    }
    await fleet.stop();
    fleet = undefined;
  }
  if (ROUTER_SCENARIOS.some((s) => wanted(s.name))) {
    fleet = await BenchFleet.start(dir, { instances, concurrency, appMs, router: true });
    for (let run = 0; run < runs; run++) {
      for (const scenario of ROUTER_SCENARIOS.filter((s) => wanted(s.name))) record({ ...(await fleet.run(scenario)), ...load });
    }
    await fleet.stop();
    fleet = undefined;
  }
  const jvmScenarios = JVM_SCENARIOS.filter((s) => wanted(s.name));
  if (jvmScenarios.length > 0 && !(await haveJdk())) {
    for (const s of jvmScenarios) record({ scenario: s.name, skipped: 'no JDK (javac, jar) on PATH' });
  } else if (jvmScenarios.length > 0) {
    jvmFleet = await JvmFleet.start(dir, { instances: Number(values['jvm-instances']), concurrency, appMs });
    for (let run = 0; run < runs; run++) {
      for (const scenario of jvmScenarios) record({ ...(await jvmFleet.run(scenario)), concurrency: jvmFleet.instances * concurrency, appMs });
    }
    await jvmFleet.stop();
    jvmFleet = undefined;
  }
  for (let run = 0; run < runs; run++) {
    if (wanted('plain-restart')) record({ ...(await benchPlainRestart(instances, concurrency, appMs)), ...load });
  }
} finally {
  await cleanUp();
}

for (const lines of results.values()) {
  const line = summarize(lines);
  const summary = line.scenario === 'gate' ? gateSummary(line) : line.scenario === 'router' ? routerSummary(line as unknown as RouterFigures) : undefined;
  console.log(JSON.stringify(summary ? { summary, ...line } : line));
}

/** Medians of the numeric fields, except the failure counts (summed). */
function summarize(lines: Line[]): Line {
  const out: Line = { ...lines[0], runs: lines.length };
  for (const key of Object.keys(lines[0]!)) {
    const values = lines.map((l) => l[key]);
    if (SUMMED.has(key)) out[key] = values.reduce((a, b) => Number(a) + Number(b), 0);
    else if (key === 'failures') out[key] = mergeCounts(values as Record<string, number>[]);
    else if (key === 'status') out[key] = [...new Set(values)].join(',');
    else if (values.every((v) => typeof v === 'number')) out[key] = median(values as number[]);
    else if (values.every((v) => v !== null && typeof v === 'object')) out[key] = medianPerKey(values as Record<string, number>[]);
  }
  return out;
}

/** Per key, the median over the runs that have it (a step's median duration, say). */
function medianPerKey(records: Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(keys.map((k) => [k, median(records.filter((r) => typeof r[k] === 'number').map((r) => r[k]!))]));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function mergeCounts(counts: Record<string, number>[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const c of counts) for (const [k, v] of Object.entries(c)) merged[k] = (merged[k] ?? 0) + v;
  return merged;
}
