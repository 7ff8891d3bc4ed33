// What the traffic gate costs one instance: throughput (autocannon) and p50 latency (the demo's load generator) direct vs through the gate.
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { LoadGenerator } from '../../examples/demo/load.js';
import { freePort } from '../harness/fleet.js';
import { startApp, startGate } from './processes.js';

export interface GateFigures {
  scenario: 'gate';
  /** Requests per second at `connections` keep-alive connections, closed loop. */
  rpsDirect: number;
  rpsGate: number;
  /** p50/p99 latency in ms at `latencyConcurrency` clients. */
  p50Direct: number;
  p50Gate: number;
  p50AddedMs: number;
  /** Gate req/s over direct req/s (the target: at least 0.5). */
  rpsRatio: number;
  p99Direct: number;
  p99Gate: number;
  failed: number;
  connections: number;
  latencyConcurrency: number;
}

const THROUGHPUT_SECONDS = 5;
const LATENCY_MS = 4000;

export async function benchGate(connections = 10, latencyConcurrency = 4): Promise<GateFigures> {
  const appPort = await freePort();
  const app = await startApp(appPort, 'bench');
  const gate = await startGate(appPort);
  try {
    const direct = `http://127.0.0.1:${appPort}/`;
    const gated = `http://127.0.0.1:${gate.port}/`;
    // Warm up both paths (JIT, pooled upstream sockets) before measuring.
    await throughput(direct, connections, 1);
    await throughput(gated, connections, 1);
    const rpsDirect = await throughput(direct, connections, THROUGHPUT_SECONDS);
    const rpsGate = await throughput(gated, connections, THROUGHPUT_SECONDS);
    const latDirect = await latency(direct, latencyConcurrency);
    const latGate = await latency(gated, latencyConcurrency);
    return {
      scenario: 'gate',
      rpsDirect: rpsDirect.rps,
      rpsGate: rpsGate.rps,
      p50Direct: latDirect.latencyMs.p50,
      p50Gate: latGate.latencyMs.p50,
      p50AddedMs: Math.round((latGate.latencyMs.p50 - latDirect.latencyMs.p50) * 100) / 100,
      rpsRatio: Math.round((rpsGate.rps / rpsDirect.rps) * 100) / 100,
      p99Direct: latDirect.latencyMs.p99,
      p99Gate: latGate.latencyMs.p99,
      failed: rpsDirect.failed + rpsGate.failed + latDirect.failed + latGate.failed,
      connections,
      latencyConcurrency,
    };
  } finally {
    await gate.stop();
    await app.stop();
  }
}

/** The bench line's headline, e.g. `gate 0.52× direct req/s, +0.15 ms p50 (2 cores)`; targets 0.5× and +0.2 ms. */
export function gateSummary(line: Record<string, unknown>): string {
  return `gate ${Number(line.rpsRatio).toFixed(2)}× direct req/s, +${Number(line.p50AddedMs).toFixed(2)} ms p50 (${cpus().length} cores)`;
}

async function throughput(url: string, connections: number, seconds: number): Promise<{ rps: number; failed: number }> {
  const result = await autocannon({ url, connections, duration: seconds });
  return { rps: Math.round(result.requests.average), failed: result.errors + result.timeouts + result.non2xx };
}

/** Sub-millisecond percentiles: autocannon's histogram keeps whole milliseconds, too coarse for "adds under 1 ms". */
async function latency(url: string, concurrency: number) {
  const load = new LoadGenerator({ urls: [url], concurrency });
  load.start();
  await new Promise((r) => setTimeout(r, LATENCY_MS));
  return load.stop();
}
